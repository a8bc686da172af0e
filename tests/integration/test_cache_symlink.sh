#!/usr/bin/env bash
# Issue 16, item 1 (security): with HOME and XDG_CACHE_HOME unset, faultline
# must not fall back to /tmp/.cache/faultline, a directory any user can
# create first. An unprivileged user plants there (a) a symlink where the
# KVM verdict's temporary file would be written (kvm-verdict.tmp.PID,
# pointing at a file of root's) and (b) a verdict "yes" with the right key.
# `faultline boot --accel auto` run by root must neither write through the
# symlink nor trust the planted verdict. Guards vm.c's kvm_cache_dir (no
# shared fallback) and the O_EXCL|O_NOFOLLOW writes in an owned directory.
# Skipped (77) where no unprivileged user can be made or /dev/kvm is absent
# (then no verdict is read or written at all).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "test_cache_symlink: skipped: must run as root to plant files as another user"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "test_cache_symlink: skipped: /dev/kvm is not usable, so --accel auto reads no verdict"; exit 77; }
user=faultline-test
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user" 2>/dev/null ||
    { echo "test_cache_symlink: skipped: cannot create the unprivileged user $user"; exit 77; }
fi
as_user() { runuser -u "$user" -- "$@"; }
if [ -e /tmp/.cache ] && [ "$(stat -c %U /tmp/.cache)" != "$user" ]; then
  echo "test_cache_symlink: skipped: /tmp/.cache exists and belongs to $(stat -c %U /tmp/.cache), so $user cannot plant there"
  exit 77
fi
as_user mkdir -p /tmp/.cache/faultline || { echo "test_cache_symlink: skipped: $user cannot write /tmp"; exit 77; }
chmod 755 "$work"
victim=$work/victim
printf 'precious\n' >"$victim"
key="kernel=$FAULTLINE_KERNEL mtime=$(stat -L -c '%.9Y' "$FAULTLINE_KERNEL") qemu=$(qemu-system-x86_64 --version | head -1)"

# One run as root, with no HOME: the planted symlink names this very
# process's pid (bash's pid is faultline's after exec).
boot_planted() { # boot_planted OUT ERR
  env -u HOME -u XDG_CACHE_HOME bash -c '
    runuser -u "$1" -- ln -sf "$2" /tmp/.cache/faultline/kvm-verdict.tmp.$$ || exit 99
    exec "$3" boot --accel auto --kernel "$4" --initrd "$5" --timeout 60' _ \
    "$user" "$victim" "$FAULTLINE_BIN" "$FAULTLINE_KERNEL" "$FAULTLINE_INITRD" >"$1" 2>"$2" || true
}

# (a) a planted "yes" with the right key, and the symlink.
as_user sh -c 'printf "%s\nyes\nplanted by another user\n" "$1" >/tmp/.cache/faultline/kvm-verdict' _ "$key"
boot_planted "$work/out1" "$work/err1"
expect "the victim file after a run with a planted verdict" "$(cat "$victim")" precious
expect_true "the planted verdict is not trusted (tcg chosen: $(head -c 300 "$work/err1"))" \
  grep -q -- '--accel auto: using tcg' "$work/err1"
expect_true "no verdict is said to come from a cache" bash -c "! grep -q cached '$work/err1' '$work/out1'"
expect_true "the guest booted under tcg" grep -q 'accelerator tcg' "$work/out1"

# (b) no verdict at all: a probe runs and must not write through the symlink.
as_user rm -f /tmp/.cache/faultline/kvm-verdict
boot_planted "$work/out2" "$work/err2"
expect "the victim file after a run that probed" "$(cat "$victim")" precious
expect_true "nothing was written into /tmp/.cache/faultline by root" \
  bash -c "[ -z \"\$(find /tmp/.cache/faultline -user root)\" ]"

as_user rm -rf /tmp/.cache
finish
