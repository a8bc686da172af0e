#!/usr/bin/env bash
# Real faults against the real VM under TCG (issue 7): QEMU killed while
# faultline waits for the trigger and while it captures, the guest kernel
# panicking, a trigger that never announces, a fault that never happens.
# Each must end in one clear sentence on stderr, exit status 2, within a
# bound, with this run's QEMU gone and its private /tmp/faultline-* directory
# removed. Guests are the bundled initramfs with /init replaced (a newc
# archive appended, as faultline itself does for a user program), or a tiny
# archive of its own.
. "$(dirname "$0")/lib.sh"

# Helpers (overlay, start_fl, wait_exit, wait_qemu, gone, ...) are in lib.sh.

# ---- guests ----
overlay sleeper '#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
echo "FAULTLINE-INIT up 0"
echo "faultline-test: this init never announces a trigger"
while :; do sleep 1000; done'
overlay nofault '#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "FAULTLINE-INIT up 0"
sh -c '\''echo "FAULTLINE-TRIGGER scenario=write pid=$$ comm=sleep page=0x7f0000000000 target=0x7f0000000100"; exec sleep 100000'\'' &
while :; do sleep 1000; done'
# Panics: an /init that is not executable and nothing else to run.
mkdir -p "$work/noexec.d"; printf '#!/bin/sh\necho never\n' >"$work/noexec.d/init"; chmod 644 "$work/noexec.d/init"
mk_cpio "$work/noexec.d" "$work/noexec.img"
mkdir -p "$work/noinit.d/etc"; echo hello >"$work/noinit.d/etc/motd"
mk_cpio "$work/noinit.d" "$work/noinit.img"

# 1. QEMU killed while faultline waits for the announcement.
# Guards: the console EOF / gdbstub hang-up path (vm_console_poll_line's EOF,
# console_wait's FL_ECLOSED) instead of waiting out --timeout 60.
start_fl "$work/o1" "$work/e1" run --initrd "$work/sleeper.img" --timeout 60 --format json
if wait_qemu 30; then sleep 1; kill -9 "$qpid"; fi
wait_exit 30
expect "QEMU killed at boot: exit status" "$rc" 2
expect_true "QEMU killed at boot: one line on stderr" one_line "$work/e1"
expect_true "QEMU killed at boot: says QEMU went away" grep -qiE 'qemu|closed|connection' "$work/e1"
expect_true "QEMU killed at boot: ends well before --timeout ($elapsed s)" lt "$elapsed" 20
expect_true "QEMU killed at boot: its private dir removed" gone
cat "$work/e1"

# 2. QEMU killed while faultline captures (the trigger announced, no fault yet).
# Guards: capture's run_to_stop sees the closed stub (FL_ECLOSED) at once, and
# the report begun is ended with its summary naming the error.
start_fl "$work/o2" "$work/e2" run --initrd "$work/nofault.img" --timeout 60 --format json
if wait_qemu 30; then sleep 5; kill -9 "$qpid"; fi
wait_exit 30
expect "QEMU killed in capture: exit status" "$rc" 2
expect_true "QEMU killed in capture: one line on stderr" one_line "$work/e2"
expect_true "QEMU killed in capture: says the stub/QEMU went away" grep -qiE 'qemu|closed|connection' "$work/e2"
expect_true "QEMU killed in capture: ends well before --timeout ($elapsed s)" lt "$elapsed" 20
expect "QEMU killed in capture: the report was begun (vm record)" "$(head -n1 "$work/o2" | jq -r .type 2>/dev/null)" vm
expect "QEMU killed in capture: last record is the summary" "$(tail -n1 "$work/o2" | jq -r .type 2>/dev/null)" summary
expect_true "QEMU killed in capture: summary names the error" \
  bash -c "tail -n1 '$work/o2' | jq -r .error | grep -qiE 'qemu|closed|connection'"
expect_true "QEMU killed in capture: its private dir removed" gone
cat "$work/e2"

# 3. The guest kernel panics (no working init). Guards: the "Kernel panic"
# detection on the console (console_drain), one sentence quoting it.
for img in noexec noinit; do
  start_fl "$work/o3" "$work/e3" run --initrd "$work/$img.img" --timeout 60
  wait_qemu 30 || true
  wait_exit 40
  expect "panic ($img): exit status" "$rc" 2
  expect_true "panic ($img): one line on stderr" one_line "$work/e3"
  expect_true "panic ($img): says the kernel panicked" grep -qi 'panic' "$work/e3"
  expect_true "panic ($img): ends well before --timeout ($elapsed s)" lt "$elapsed" 30
  expect_true "panic ($img): QEMU gone, private dir removed" gone
  cat "$work/e3"
done

# 4. The trigger never announces: --timeout 5 bounds the wait. Guards
# console_wait's deadline and its sentence (last console lines included).
start_fl "$work/o4" "$work/e4" run --initrd "$work/sleeper.img" --timeout 5 --format json
wait_qemu 30 || true
wait_exit 40
expect "no announcement: exit status" "$rc" 2
expect_true "no announcement: one line on stderr" one_line "$work/e4"
expect_true "no announcement: names the missing line and the 5 s" grep -qE "FAULTLINE-TRIGGER.*within 5 s|within 5 s.*FAULTLINE-TRIGGER|within 5000 ms" "$work/e4"
expect_true "no announcement: quotes the console" grep -q 'never announces' "$work/e4"
expect_true "no announcement: within --timeout 5 + boot + margin ($elapsed s)" lt "$elapsed" 15
expect_true "no announcement: QEMU gone, private dir removed" gone
cat "$work/e4"

# 5. The announced fault never happens: --timeout 5 bounds the capture.
# Guards cap_fault_capture's deadline (FL_ETIMEOUT) and the summary record.
start_fl "$work/o5" "$work/e5" run --initrd "$work/nofault.img" --timeout 5 --format json
wait_qemu 30 || true
wait_exit 40
expect "no fault: exit status" "$rc" 2
expect_true "no fault: one line on stderr" one_line "$work/e5"
expect_true "no fault: says the filtered fault did not happen within 5000 ms" \
  grep -q 'the filtered fault did not happen within 5000 ms' "$work/e5"
expect_true "no fault: within --timeout 5 + boot + margin ($elapsed s)" lt "$elapsed" 15
expect "no fault: last record is the summary" "$(tail -n1 "$work/o5" | jq -r .type 2>/dev/null)" summary
expect_true "no fault: summary names the timeout" \
  bash -c "tail -n1 '$work/o5' | jq -r .error | grep -q 'did not happen'"
expect_true "no fault: QEMU gone, private dir removed" gone
cat "$work/e5"
finish
