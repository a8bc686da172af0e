#!/usr/bin/env bash
# Build faultline's guest kernel from Debian's linux-source-6.12, once per
# machine: the tree lives in the cache, keyed by the source package version and
# a hash of our config fragment and this script. A build counts as cached only
# when its stamp exists; the stamp is written last, so an interrupted build is
# resumed (make is incremental), never used.
#
# Prints progress on stderr and, on success, the kernel directory on stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
fragment="$here/kernel-config/faultline.config"
tarball=/usr/src/linux-source-6.12.tar.xz
cache="${FAULTLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faultline}"

say() { printf 'faultline: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

[ -r "$tarball" ] || die "the kernel source $tarball is missing: run scripts/install-deps.sh (package linux-source-6.12)."
pkgver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) ||
  die "cannot read the version of package linux-source-6.12: is it installed?"
key=$(cat "$fragment" "$0" | sha256sum | cut -c1-12)
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
  say "kernel: linux-source-6.12 $pkgver (cached in $dir)"
  printf '%s\n' "$dir"
  exit 0
fi

need_kb=$((3 * 1024 * 1024))
avail_kb=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt "$need_kb" ] && [ ! -d "$dir/src" ]; then
  die "the kernel build needs about 3 GB free in $cache, and only $((avail_kb / 1024)) MB are: free some space or set XDG_CACHE_HOME."
fi

say "kernel: building linux-source-6.12 $pkgver with kernel-config/faultline.config (once per machine, about 3 min)"
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

cd "$dir/src"
jobs=$(nproc 2>/dev/null || echo 2)
{
  make -s tinyconfig
  scripts/kconfig/merge_config.sh -m .config "$fragment"
  make -s olddefconfig
} >"$dir/config.log" 2>&1 || die "kernel configuration failed: see $dir/config.log."

# Every line of the fragment that asks for a value must have it after
# olddefconfig, or a dependency silently dropped it.
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=n) opt=${line%%=*}; grep -q "^$opt=" .config && die "kernel config: $opt stayed on although the fragment turns it off." ;;
    CONFIG_*=*) grep -qx "$line" .config || die "kernel config: $line was dropped by olddefconfig (a missing dependency)." ;;
  esac
done < "$fragment"
grep -qx 'CONFIG_PER_VMA_LOCK=y' .config || die "kernel config: PER_VMA_LOCK is off, so the fault path would not match the seed."

# Progress: a running count of compiled objects, redrawn on a terminal, one
# line every 250 objects otherwise (CI logs).
start=$(date +%s)
set +e
make -j"$jobs" vmlinux 2>"$dir/build.err" | tee "$dir/build.log" | awk -v tty="$( [ -t 2 ] && echo 1 || echo 0)" '
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
printf 'linux-source-6.12 %s (%s)\n' "$pkgver" "$release" > "$dir/version"
ln -sfn src/vmlinux "$dir/vmlinux"
touch "$stamp"
say "kernel: built $release in $(( $(date +%s) - start )) s"
printf '%s\n' "$dir"
