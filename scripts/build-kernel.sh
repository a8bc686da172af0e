#!/usr/bin/env bash
# Build a faultline guest kernel from Debian's linux-source-VERSION (default
# 6.12, the bundled one; 6.1 is the second test kernel), once per machine.
# Usage: scripts/build-kernel.sh [VERSION]
#
# The config is kernel-config/faultline.config with the per-version lines of
# kernel-config/linux-VERSION.config (renamed options, dropped lines, required
# results). The tree lives in the cache, keyed by the source package version
# and a hash of what really changes the build: the composed fragment's option
# lines and the two build steps (configure_kernel, compile_kernel below, as
# bash prints them): editing comments, progress or checks here does not
# rebuild. A build
# counts as cached only when its stamp exists; the stamp is written last, so
# an interrupted build is resumed (make is incremental), never used.
#
# Prints progress on stderr and, on success, the kernel directory on stdout.
# Exit 3: the source package is not installed (tests skip on it); 2: any
# other failure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
version=${1:-6.12}
case "$version" in
  [0-9]*.[0-9]*) ;;
  *) printf 'faultline: "%s" is not a kernel version: give one like 6.12 or 6.1.\n' "$version" >&2; exit 2 ;;
esac
pkg=linux-source-$version
base="$here/kernel-config/faultline.config"
extra="$here/kernel-config/linux-$version.config"
tarball=/usr/src/$pkg.tar.xz
cache="${FAULTLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faultline}"

say() { printf 'faultline: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

# The base fragment without the lines the version file drops, then the
# version file's own lines.
compose_fragment() {
  local drops=""
  [ -f "$extra" ] && drops=$(sed -n 's/^# faultline-drop: *\(CONFIG_[A-Za-z0-9_]*\).*/\1/p' "$extra")
  awk -v drops="$drops" 'BEGIN { n = split(drops, d, "\n"); for (i = 1; i <= n; i++) skip[d[i]] = 1 }
    { opt = $0; sub(/=.*/, "", opt); if (!(opt in skip)) print }' "$base"
  [ -f "$extra" ] && cat "$extra"
  return 0
}
# The two steps that make the kernel; their text is part of the cache key.
configure_kernel() {
  make -s tinyconfig
  scripts/kconfig/merge_config.sh -m .config "$1"
  make -s olddefconfig
}
compile_kernel() {
  make -j"$1" vmlinux
}

if [ ! -r "$tarball" ]; then
  say "the kernel source $tarball is missing: install the package $pkg (apt-get install $pkg; for 6.12 scripts/install-deps.sh does it)."
  exit 3
fi
pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
  die "cannot read the version of package $pkg: is it installed?"
fragment_text=$(compose_fragment)
# The key: the option lines only (comments change nothing) and the steps.
key=$( { printf '%s\n' "$fragment_text" | grep '^CONFIG_'; declare -f configure_kernel compile_kernel; } | sha256sum | cut -c1-12)
dir="$cache/linux-$pkgver-$key"
stamp="$dir/.faultline-built"

mkdir -p "$cache" || die "cannot create the cache directory $cache."
# One builder at a time per cache entry (make run and make test may race).
exec 9>"$cache/.lock-linux-$pkgver-$key"
if ! flock -n 9; then
  say "another build of this kernel is running; waiting for it (up to 30 min)."
  flock -w 1800 9 || die "timed out waiting for the other kernel build to finish."
fi

if [ -f "$stamp" ]; then
  say "kernel: $pkg $pkgver (cached in $dir)"
  printf '%s\n' "$dir"
  exit 0
fi

need_kb=$((3 * 1024 * 1024))
avail_kb=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt "$need_kb" ] && [ ! -d "$dir/src" ]; then
  die "the kernel build needs about 3 GB free in $cache, and only $((avail_kb / 1024)) MB are: free some space or set XDG_CACHE_HOME."
fi

say "kernel: building $pkg $pkgver with kernel-config/faultline.config${extra:+ and $(basename "$extra")} (once per machine, about 3 min)"
mkdir -p "$dir"
if [ ! -f "$dir/.extracted" ]; then
  say "kernel: unpacking $tarball"
  rm -rf "$dir/src.partial"
  mkdir -p "$dir/src.partial"
  tar -xf "$tarball" -C "$dir/src.partial" --strip-components=1
  rm -rf "$dir/src"
  mv "$dir/src.partial" "$dir/src"
  touch "$dir/.extracted"
fi

printf '%s\n' "$fragment_text" > "$dir/fragment.config"
cd "$dir/src"
jobs=$(nproc 2>/dev/null || echo 2)
configure_kernel "$dir/fragment.config" >"$dir/config.log" 2>&1 ||
  die "kernel configuration failed: see $dir/config.log."

# Every line of the fragment that asks for a value must have it after
# olddefconfig, or a dependency silently dropped it; and what the version
# file requires must have followed from it.
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=n) opt=${line%%=*}; grep -q "^$opt=" .config && die "kernel config: $opt stayed on although the fragment turns it off." ;;
    CONFIG_*=*) grep -qx "$line" .config || die "kernel config: $line was dropped by olddefconfig (a missing dependency or an option $pkg does not have: see kernel-config/linux-$version.config)." ;;
    "# faultline-require: "*) req=${line#\# faultline-require: }
      grep -qx "$req" .config || die "kernel config: $req is required on $pkg and olddefconfig did not give it." ;;
  esac
done < "$dir/fragment.config"

# Progress: a running count of compiled objects, redrawn on a terminal, one
# line every 250 objects otherwise (CI logs).
start=$(date +%s)
set +e
compile_kernel "$jobs" 2>"$dir/build.err" | tee "$dir/build.log" | awk -v tty="$( [ -t 2 ] && echo 1 || echo 0)" '
  /^  CC / || /^  AS / { n++;
    if (tty) { printf "\rfaultline: kernel: %5d objects built (%s)          ", n, $2 > "/dev/stderr" }
    else if (n % 250 == 0) { printf "faultline: kernel: %d objects built\n", n > "/dev/stderr" } }
  END { if (tty) printf "\n" > "/dev/stderr" }'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  tail -n 20 "$dir/build.err" >&2
  die "the kernel build failed (make exit $rc): see $dir/build.err; rerun to resume."
fi

release=$(make -s kernelrelease)
printf '%s %s (%s)\n' "$pkg" "$pkgver" "$release" > "$dir/version"
ln -sfn src/vmlinux "$dir/vmlinux"
touch "$stamp"
say "kernel: built $release in $(( $(date +%s) - start )) s"
printf '%s\n' "$dir"
