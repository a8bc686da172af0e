#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages faultline builds and runs with.
# Quick and silent when everything is present; one clear line when it cannot.
set -u
pkgs=(build-essential pkg-config clang libelf-dev libdwarf-dev libcapstone-dev libexpat1-dev
      zlib1g-dev libjansson-dev qemu-system-x86 linux-source-6.12 busybox-static flex bison bc cpio gzip
      xz-utils libssl-dev libelf-dev gdb valgrind binutils jq man-db)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "faultline: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo
  else echo "faultline: missing packages (${missing[*]}) and not root: run 'sudo scripts/install-deps.sh' once." >&2; exit 2; fi
else SUDO=; fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "faultline: apt-get could not install ${missing[*]} (no network or no package list?): $(grep -E '^E:' "$log" | head -1)" >&2
  rm -f "$log"; exit 2
fi
rm -f "$log"
