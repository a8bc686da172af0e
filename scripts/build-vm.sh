#!/usr/bin/env bash
# Puts the guest faultline boots into OUTDIR (default build/vm):
#   vmlinux -> the cached kernel (scripts/build-kernel.sh VERSION, default
#   6.12), kernel-version, kernel-src -> its source tree (for source lines),
#   initramfs.cpio.gz.
# Usage: scripts/build-vm.sh [OUTDIR [VERSION]]  (exit 3: that kernel's
# source package is not installed)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/build/vm}
version=${2:-6.12}
mkdir -p "$out"
rc=0; kdir=$("$here/scripts/build-kernel.sh" "$version") || rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
ln -sfn "$kdir/src/vmlinux" "$out/vmlinux"
ln -sfn "$kdir/src" "$out/kernel-src"
cp "$kdir/version" "$out/kernel-version"
"$here/scripts/build-initramfs.sh" "$out/initramfs.cpio.gz"
