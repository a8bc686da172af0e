#!/usr/bin/env bash
# Puts the guest faultline boots into OUTDIR (default build/vm):
#   vmlinux -> the cached kernel (scripts/build-kernel.sh), kernel-version,
#   kernel-src -> its source tree (for source lines), initramfs.cpio.gz.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/build/vm}
mkdir -p "$out"
kdir=$("$here/scripts/build-kernel.sh")
ln -sfn "$kdir/src/vmlinux" "$out/vmlinux"
ln -sfn "$kdir/src" "$out/kernel-src"
cp "$kdir/version" "$out/kernel-version"
"$here/scripts/build-initramfs.sh" "$out/initramfs.cpio.gz"
