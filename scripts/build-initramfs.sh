#!/usr/bin/env bash
# Builds faultline's guest initramfs: busybox-static with its applet links,
# vm/init as /init, and the static trigger program (vm/triggers/trigger.c) as
# /bin/fl-trigger with one link per scenario (fl-write, fl-read, ..., the list
# below; vm/init runs them by name).
#
# Usage: scripts/build-initramfs.sh OUT.cpio.gz
# Rebuilds only when an input changed (a hash of the inputs is kept in
# OUT.inputs); silent when up to date, one line when it builds. The archive is
# reproducible (sorted names, fixed owner and mtime, gzip -n) and replaced
# atomically, so a reader never sees half a file.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'faultline: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

[ $# -eq 1 ] || die "usage: scripts/build-initramfs.sh OUT.cpio.gz"
out=$1
busybox=${BUSYBOX:-/bin/busybox}
cc=${CC:-cc}
init="$here/vm/init"
trigger_src="$here/vm/triggers/trigger.c"
scenarios=(write read kernel-write write-forked cow file-read exec segv-write null kernel-fixup stack-grow)

[ -x "$busybox" ] || die "busybox is missing at $busybox: install busybox-static (scripts/install-deps.sh)."
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable' ||
  die "$busybox is not statically linked: install busybox-static, not busybox."
command -v cpio >/dev/null || die "cpio is missing: install it (scripts/install-deps.sh)."
command -v "$cc" >/dev/null || die "the C compiler $cc is missing: install build-essential."
[ -r "$init" ] && [ -r "$trigger_src" ] || die "vm/init or vm/triggers/trigger.c is missing from $here."

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# One builder per output (make run and make test may race).
exec 9>"$out.lock"
flock -w 300 9 || die "timed out waiting for another build of $out."

# The inputs: our sources, this script, busybox and the compiler's identity.
key=$( {
  cat "$0" "$init" "$trigger_src"
  sha256sum "$busybox"
  "$cc" --version 2>&1 | head -1
  id -u   # root can create dev/console, others cannot: a different archive
} | sha256sum | cut -c1-64)
if [ -f "$out" ] && [ -f "$out.inputs" ] && [ "$(cat "$out.inputs")" = "$key" ]; then
  exit 0
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/faultline-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
chmod 1777 "$root/tmp"

cp "$busybox" "$root/bin/busybox"
# --list-full gives each applet's usual place (bin/sh, sbin/reboot, ...).
"$busybox" --list-full | while IFS= read -r applet; do
  [ -n "$applet" ] && [ ! -e "$root/$applet" ] && ln -s /bin/busybox "$root/$applet"
done

"$cc" -static -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
  "$trigger_src" -o "$root/bin/fl-trigger" 2>"$stage/cc.log" ||
  { cat "$stage/cc.log" >&2; die "compiling vm/triggers/trigger.c failed (above)."; }
for s in "${scenarios[@]}"; do ln -s fl-trigger "$root/bin/fl-$s"; done

install -m 0755 "$init" "$root/init"

# The kernel's built-in default initramfs already has /dev/console, so a
# non-root build still boots with a console; as root we add it ourselves.
if [ "$(id -u)" -eq 0 ]; then
  mknod -m 0600 "$root/dev/console" c 5 1
fi

# Reproducible: fixed mtime (SOURCE_DATE_EPOCH if set), owner 0:0, sorted list.
epoch=${SOURCE_DATE_EPOCH:-0}
find "$root" -exec touch -h -d "@$epoch" {} +
tmp="$out.tmp.$$"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
  cpio --quiet -o -H newc -R 0:0 --reproducible | gzip -9n) >"$tmp" ||
  { rm -f "$tmp"; die "packing the initramfs with cpio failed."; }
mv -f "$tmp" "$out"
printf '%s\n' "$key" >"$out.inputs.tmp.$$" && mv -f "$out.inputs.tmp.$$" "$out.inputs"
say "initramfs: built $out ($(du -k "$out" | cut -f1) KB: busybox, /init, fl-trigger ${scenarios[*]})"
