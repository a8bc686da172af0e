#!/usr/bin/env bash
# `faultline capture` against a QEMU the user started, already running (no -S):
# attach, capture the trigger's fault with --pid/--addr filters, detach, and
# the guest runs on to its normal end (the trigger checks its own data).
. "$(dirname "$0")/lib.sh"
dir=$work/qemu; mkdir -m 0700 "$dir"; mkfifo "$dir/con.in" "$dir/con.out"
qemu-system-x86_64 -accel tcg -cpu max -m 256 -smp 1 -nodefaults -display none -no-reboot \
  -gdb "unix:$dir/gdb.sock,server=on,wait=off" -serial "pipe:$dir/con" \
  -kernel "$FAULTLINE_KERNEL" -initrd "$FAULTLINE_INITRD" \
  -append "console=ttyS0 loglevel=4 panic=-1 faultline.scenario=write" 2>"$work/qemu.err" &
qpid=$!
trap 'rc=$?; kill -9 $qpid 2>/dev/null || true; wait $qpid 2>/dev/null || true; rm -rf "$work"; exit $rc' EXIT
exec 3<>"$dir/con.in"
cat "$dir/con.out" >"$work/console" &
wait_for() { # wait_for FILE PATTERN SECONDS
  local i; for ((i = 0; i < $3 * 10; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
expect_true "the trigger announced itself (QEMU running, nobody attached)" wait_for "$work/console" FAULTLINE-TRIGGER 60
line=$(grep -m1 FAULTLINE-TRIGGER "$work/console")
pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line"); target=$(sed -n 's/.* target=\(0x[0-9a-f]*\).*/\1/p' <<<"$line")
j=$work/capture.json
timeout 120 "$FAULTLINE_BIN" capture --gdb "unix:$dir/gdb.sock" --vmlinux "$FAULTLINE_KERNEL" --pid "$pid" \
  --addr "$target" --format json -o "$j" 2>"$work/err" &
fpid=$!
expect_true "faultline says when it is attached and armed" wait_for "$work/err" "waiting up to" 30
echo go >&3
rc=0; wait $fpid || rc=$?
expect "capture: exit status" "$rc" 0
expect "capture: CR2" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "capture: flags" "$(value "$j" handle_mm_fault flags)" 0x1255
expect "capture: current pid" "$(jq -r 'select(.type=="probe" and .function=="exc_page_fault") | .pid' "$j")" "$pid"
expect "capture: checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "capture: at least 20 checks" [ "$(jq -s '[.[] | select(.type=="check")] | length' "$j")" -ge 20 ]
# Detached: the guest goes on, the trigger verifies its write, init powers off.
expect_true "the guest ran on after the detach: trigger ok" wait_for "$work/console" "FAULTLINE-RESULT scenario=write ok" 30
expect_true "the guest ran on after the detach: init done" wait_for "$work/console" "FAULTLINE-DONE scenario=write status=0" 30
cat "$work/err" >&2
finish
