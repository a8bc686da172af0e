#!/usr/bin/env bash
# `faultline trace --gdb` against a QEMU the user started (issue 13), as
# test_attach.sh starts one: running, nobody attached. faultline attaches,
# traces the trigger's fault (filtered by --pid and --addr) from
# asm_exc_page_fault back to user mode, detaches, and the guest runs on to
# its normal end. Then, on a second QEMU started halted (-S), `capture
# --count 0` takes every fault of the trigger until the timeout and ends
# normally, each fault written.
. "$(dirname "$0")/lib.sh"
# start_qemu NAME SCENARIO EXTRA-QEMU-ARGS...: QEMU with its stub in
# $work/NAME, the console in $work/NAME.console, its input on fd 3 -> qpid, dir
start_qemu() {
  dir=$work/$1 scen=$2; mkdir -m 0700 "$dir"; mkfifo "$dir/con.in" "$dir/con.out"; shift 2
  qemu-system-x86_64 -accel tcg -cpu max -m 256 -smp 1 -nodefaults -display none -no-reboot "$@" \
    -gdb "unix:$dir/gdb.sock,server=on,wait=off" -serial "pipe:$dir/con" \
    -kernel "$FAULTLINE_KERNEL" -initrd "$FAULTLINE_INITRD" \
    -append "console=ttyS0 loglevel=4 panic=-1 faultline.scenario=$scen" 2>"$dir.qemu.err" &
  qpid=$!; qpids+=" $qpid"
  exec 3<>"$dir/con.in"
  cat "$dir/con.out" >"$dir.console" &
}
qpids=""
trap 'rc=$?; for p in $qpids; do kill -9 $p 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; exit $rc' EXIT
wait_for() { # wait_for FILE PATTERN SECONDS
  local i; for ((i = 0; i < $3 * 10; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
for f in "$FAULTLINE_KERNEL" "$FAULTLINE_INITRD"; do [ -r "$f" ] || { echo "no guest file $f: run 'make vm'"; exit 77; }; done
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64"; exit 77; }

# ---- trace --gdb on a running guest ----
start_qemu run write
expect_true "the trigger announced itself (QEMU running, nobody attached)" wait_for "$dir.console" FAULTLINE-TRIGGER 60
line=$(grep -m1 FAULTLINE-TRIGGER "$dir.console")
pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line"); target=$(sed -n 's/.* target=\(0x[0-9a-f]*\).*/\1/p' <<<"$line")
j=$work/trace.json
timeout 300 "$FAULTLINE_BIN" trace --gdb "unix:$dir/gdb.sock" --vmlinux "$FAULTLINE_KERNEL" --pid "$pid" \
  --addr "$target" --mode fast --format json -o "$j" 2>"$work/trace.err" &
fpid=$!
expect_true "trace --gdb says when it is attached and armed" wait_for "$work/trace.err" "waiting up to" 30
echo go >&3
rc=0; wait $fpid || rc=$?
expect "trace --gdb: exit status" "$rc" 0
tr() { jq -r "select(.type==\"trace\") | .$1" "$j"; }
expect "trace --gdb: the captured fault is the trigger's (CR2)" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "trace --gdb: starts at asm_exc_page_fault's entry" "$(tr start_pc)" \
  "$(jq -r 'select(.type=="probe" and .function=="asm_exc_page_fault") | .pc' "$j")"
expect "trace --gdb: the first step is in asm_exc_page_fault" \
  "$(jq -r 'select(.type=="step") | .function' "$j" | head -1)" asm_exc_page_fault
expect "trace --gdb: stopped back in user mode" "$(tr stop)" user
expect "trace --gdb: final CS is the user's" "$(tr final_cs)" 0x33
expect_true "trace --gdb: passes handle_mm_fault" \
  [ -n "$(jq -r 'select(.type=="step" and .function=="handle_mm_fault") | .i' "$j" | head -1)" ]
expect "trace --gdb: the summary is the last record" "$(tail -n1 "$j" | jq -r .type)" summary
# Detached: the guest goes on, the trigger verifies its write, init powers off.
expect_true "the guest ran on after the detach: trigger ok" wait_for "$dir.console" "FAULTLINE-RESULT scenario=write ok" 60
expect_true "the guest ran on after the detach: init done" wait_for "$dir.console" "FAULTLINE-DONE scenario=write status=0" 60
cat "$work/trace.err" >&2
exec 3>&-

# ---- capture --count 0 on a halted guest: every fault of the trigger until the timeout ----
# Scenario "all": after the write trigger the read trigger announces itself
# and waits for a "go" that never comes, so the guest stays up and the
# timeout ends the capture.
start_qemu halted all -S
n=100; while [ ! -S "$dir/gdb.sock" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
c=$work/count0.json
t0=$(now)
timeout 300 "$FAULTLINE_BIN" capture --gdb "unix:$dir/gdb.sock" --vmlinux "$FAULTLINE_KERNEL" --comm fl-write \
  --count 0 --timeout 40 --probes asm_exc_page_fault,handle_mm_fault --format json -o "$c" 2>"$work/count0.err" &
fpid=$!
expect_true "--count 0: the trigger announced itself" wait_for "$dir.console" FAULTLINE-TRIGGER 60
echo go >&3
expect_true "--count 0: the trigger ran to its end while captured" wait_for "$dir.console" "FAULTLINE-RESULT scenario=write ok" 60
rc=0; wait $fpid || rc=$?
el=$(secs_since "$t0")
expect "--count 0: ends normally on the timeout" "$rc" 0
expect_true "--count 0: ran until the timeout ($el s)" [ "$(echo "$el >= 39" | bc)" = 1 ]
faults=$(tail -n1 "$c" 2>/dev/null | jq -r .faults 2>/dev/null || echo 0)
cat "$work/count0.err" >&2
expect_true "--count 0: more than one fault of fl-write ($faults)" [ "$faults" -ge 2 ]
expect "--count 0: one entry record per fault" "$(jq -s '[.[] | select(.type=="probe" and .function=="asm_exc_page_fault" and .hit)] | length' "$c")" "$faults"
expect "--count 0: every fault is fl-write's" \
  "$(jq -r 'select(.type=="probe" and .function=="asm_exc_page_fault") | .comm' "$c" | sort -u)" fl-write
expect_true "--count 0: the write fault on the target is among them" \
  bash -c "jq -r 'select(.type==\"probe\" and .function==\"asm_exc_page_fault\") | .values.cr2.value' '$c' | grep -qx 0x7f0000000100"
expect "--count 0: no error in the summary" "$(tail -n1 "$c" | jq -r '.error // "none"')" none
finish
