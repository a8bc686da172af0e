#!/usr/bin/env bash
# `make install` / `make uninstall` (scripts/install.mk) into fresh prefixes:
#  1. PREFIX=$tmp/x: every file in its place; a program built against the
#     installed library with nothing but `pkg-config --cflags --libs faultline`
#     runs against the shared library and, with --static, the static one; each
#     man page formats without warnings; the installed binary answers
#     --version and --help and boots the installed guest files; the completion
#     loads; `make uninstall` leaves no file behind.
#  2. DESTDIR=$tmp/stage PREFIX=/opt/...: the same files under DESTDIR, PREFIX
#     (not DESTDIR) recorded in the .pc and the binary; uninstall with the
#     same DESTDIR leaves nothing.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
example="$top/tests/install/example.c"

mk=(make -C "$top" --no-print-directory)
# Until the top Makefile includes the fragment, name it here.
grep -qE '^[[:space:]]*-?include[[:space:]]+scripts/install\.mk' "$top/Makefile" || mk+=(-f Makefile -f scripts/install.mk)
quiet() { "$@" >/dev/null 2>&1; }
# run_logged LOG CMD...: run, keep the output, show its tail when it fails.
run_logged() {
  local log=$1; shift
  if "$@" >"$log" 2>&1; then return 0; fi
  echo "--- $* failed:" >&2; tail -n 20 "$log" >&2; return 1
}

# What install puts under a prefix (relative paths).
version=$(sed -n 's/.*define FAULTLINE_VERSION "\([0-9.]*\)".*/\1/p' "$top/src/main.c")
files=(bin/faultline lib/libfaultline.a "lib/libfaultline.so.$version" lib/pkgconfig/faultline.pc
       share/man/man1/faultline.1 share/man/man5/faultline-json.5
       share/bash-completion/completions/faultline
       share/faultline/vmlinux share/faultline/initramfs.cpio.gz share/faultline/kernel-version)
for h in "$top"/include/faultline/*.h; do files+=("include/faultline/$(basename "$h")"); done
check_tree() { # check_tree ROOT: every file there, the library links right
  local root=$1 f
  for f in "${files[@]}"; do expect_true "installed $f" test -f "$root/$f" -a -s "$root/$f"; done
  expect "libfaultline.so.0 -> libfaultline.so.$version" "$(readlink "$root/lib/libfaultline.so.0")" "libfaultline.so.$version"
  expect "libfaultline.so -> libfaultline.so.0" "$(readlink "$root/lib/libfaultline.so")" "libfaultline.so.0"
  expect "soname" "$(readelf -d "$root/lib/libfaultline.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" "libfaultline.so.0"
  expect_true "the binary is executable" test -x "$root/bin/faultline"
  expect "vmlinux is a copy of the cached kernel" "$(cmp -s "$root/share/faultline/vmlinux" "$top/build/vm/vmlinux" && echo same)" same
  expect_true "vmlinux is a file, not a link into someone's cache" test ! -L "$root/share/faultline/vmlinux"
}
# nothing_left ROOT: no file or link under ROOT (empty directories may stay).
nothing_left() { [ -z "$(find "$1" ! -type d -print -quit)" ] || { find "$1" ! -type d | head >&2; return 1; }; }

# ---- 1. PREFIX ----
x="$work/x"
expect_true "make install PREFIX=$x" run_logged "$work/install.log" "${mk[@]}" install PREFIX="$x"
check_tree "$x"
expect "the .pc records the prefix" "$(sed -n 's/^prefix=//p' "$x/lib/pkgconfig/faultline.pc")" "$x"

export PKG_CONFIG_PATH="$x/lib/pkgconfig"
expect "pkg-config --modversion" "$(pkg-config --modversion faultline 2>&1)" "$version"
cflags_libs=$(pkg-config --cflags --libs faultline)
static_flags=$(pkg-config --static --cflags --libs faultline)
echo "pkg-config --cflags --libs faultline: $cflags_libs"
echo "pkg-config --static --cflags --libs faultline: $static_flags"

# Against the shared library.
# shellcheck disable=SC2086 # the flags are words
expect_true "example builds against the shared library" \
  run_logged "$work/cc-shared.log" cc -Wall -Wextra -Werror "$example" $cflags_libs -o "$work/example-shared"
if [ -x "$work/example-shared" ]; then
  expect "the example links libfaultline.so.0 from the prefix" \
    "$(LD_LIBRARY_PATH="$x/lib" ldd "$work/example-shared" | awk '$1 == "libfaultline.so.0" {print $3}')" "$x/lib/libfaultline.so.0"
  expect_true "the example runs (shared) and its results hold" \
    run_logged "$work/run-shared.log" env LD_LIBRARY_PATH="$x/lib" "$work/example-shared"
  expect_true "it says so" grep -q 'all results as expected' "$work/run-shared.log"
fi
# Against the static library: -static links every library from its .a, so
# this also proves Libs.private / Requires.private are complete.
# shellcheck disable=SC2086
expect_true "example builds statically with pkg-config --static" \
  run_logged "$work/cc-static.log" cc -static -Wall -Wextra -Werror "$example" $static_flags -o "$work/example-static"
if [ -x "$work/example-static" ]; then
  expect_true "the static example needs no shared library" bash -c '! readelf -d "$1" 2>/dev/null | grep -q NEEDED' _ "$work/example-static"
  expect_true "the example runs (static) and its results hold" run_logged "$work/run-static.log" "$work/example-static"
fi

# Man pages: formatted with warnings on, and no warning.
for page in "$x/share/man/man1/faultline.1" "$x/share/man/man5/faultline-json.5"; do
  name=$(basename "$page")
  if command -v man >/dev/null; then
    expect_true "man -l $name" run_logged "$work/man.log" env MANWIDTH=80 MANPAGER=cat PAGER=cat man -l "$page"
    expect_true "man -l $name shows its NAME" grep -q '^NAME' "$work/man.log"
    expect "man --warnings -l $name: no warning" "$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)" ""
  elif command -v groff >/dev/null; then
    expect "groff -man $name: no warning" "$(groff -man -Tutf8 -ww -z "$page" 2>&1)" ""
  elif command -v mandoc >/dev/null; then
    expect_true "mandoc -Tlint $name" mandoc -Tlint -Wwarning "$page"
  else
    echo "SKIP: man pages not formatted: neither man (man-db), groff nor mandoc is installed"
  fi
done

# The installed binary: help, version, and the guest files it boots by default.
fl="$x/bin/faultline"
expect_true "installed faultline --version" quiet "$fl" --version
expect_true "installed faultline --version names $version" bash -c '"$1" --version | grep -qF "$2"' _ "$fl" "$version"
expect_true "installed faultline --help" quiet "$fl" --help
expect_true "installed faultline run --help" quiet "$fl" run --help
rc=0
(cd "$work" && env -u FAULTLINE_KERNEL -u FAULTLINE_INITRD timeout 180 "$fl" boot --timeout 120) \
  >"$work/boot.out" 2>"$work/boot.err" || rc=$?
expect "installed faultline boot, with no FAULTLINE_KERNEL, from elsewhere: exit status" "$rc" 0
if [ "$rc" -ne 0 ]; then
  cat "$work/boot.err" >&2
  grep -q 'build/vm' "$work/boot.err" &&
    echo "FAIL: the installed binary looks in build/vm: src/main.c's guest_file() must use FAULTLINE_DATADIR" >&2
fi
expect_true "it booted the installed guest to its end" grep -q '^FAULTLINE-DONE .*status=0' "$work/boot.out"
# Only our own QEMU counts (others' tests may run one at the same time).
expect_true "no QEMU left running the installed guest" \
  bash -c '! { pgrep -a -x qemu-system-x86 || true; } | grep -qF -- "$1"' _ "$x/share/faultline/"

expect "completion: installed and loads" \
  "$(bash -c '. "$1"; complete -p faultline' _ "$x/share/bash-completion/completions/faultline" 2>&1)" "complete -F _faultline faultline"

expect_true "make uninstall PREFIX=$x" run_logged "$work/uninstall.log" "${mk[@]}" uninstall PREFIX="$x"
expect_true "make uninstall left no file in $x" nothing_left "$x"
expect_true "make uninstall removed faultline's own directories" test ! -e "$x/share/faultline" -a ! -e "$x/include/faultline"

# ---- 2. DESTDIR ----
stage="$work/stage"
prefix=/opt/faultline-install-test
expect_true "make install DESTDIR=$stage PREFIX=$prefix" \
  run_logged "$work/install2.log" "${mk[@]}" install DESTDIR="$stage" PREFIX="$prefix"
check_tree "$stage$prefix"
expect "nothing outside DESTDIR/PREFIX" "$(cd "$stage" && find . -mindepth 1 -maxdepth 1)" "./opt"
expect_true "nothing written to $prefix itself" test ! -e "$prefix"
expect "the .pc records PREFIX, not DESTDIR" "$(sed -n 's/^prefix=//p' "$stage$prefix/lib/pkgconfig/faultline.pc")" "$prefix"
# The staged binary looks for its guest in PREFIX, where nothing is yet: it
# must say so and name that path (it boots nothing).
rc=0
(cd "$work" && env -u FAULTLINE_KERNEL -u FAULTLINE_INITRD timeout 60 "$stage$prefix/bin/faultline" boot) \
  >/dev/null 2>"$work/boot2.err" || rc=$?
expect "the staged binary, before its files are in place: exit status" "$rc" 2
expect_true "it looks for its kernel in $prefix/share/faultline" grep -qF "$prefix/share/faultline/vmlinux" "$work/boot2.err"
expect_true "make uninstall DESTDIR=$stage PREFIX=$prefix" \
  run_logged "$work/uninstall2.log" "${mk[@]}" uninstall DESTDIR="$stage" PREFIX="$prefix"
expect_true "make uninstall left no file in $stage" nothing_left "$stage"

finish
