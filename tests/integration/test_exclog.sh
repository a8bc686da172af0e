#!/usr/bin/env bash
# The entry station from QEMU's exception log, through the command line:
#  - capture --exception-log against a QEMU the user started with -d int -D
#    FILE, on write-forked (a child with the same comm faults on the same
#    address first, in its own address space: it must not be reported);
#  - run --entry-log on a program that writes to 25 fresh pages: each page's
#    fault is reported, in order, with the program's own values;
#  - the option errors.
. "$(dirname "$0")/lib.sh"
command -v cc >/dev/null && command -v jq >/dev/null || { echo "SKIP: needs cc and jq"; exit 77; }

# ---- capture --exception-log, against the user's QEMU ----
wait_for() { # wait_for FILE PATTERN SECONDS
  local i; for ((i = 0; i < $3 * 10; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
qpid=
trap 'rc=$?; [ -n "$qpid" ] && kill -9 $qpid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; exit $rc' EXIT
# user_qemu SCENARIO: the user's QEMU (running, -d int -D $dir/exc.log) up to
# the trigger's announcement -> dir, qpid, pid, target; fd 3 writes its console
user_qemu() {
  dir=$work/qemu-$1; mkdir -m 0700 "$dir"; mkfifo "$dir/con.in" "$dir/con.out"
  qemu-system-x86_64 -accel tcg -cpu max -m 256 -smp 1 -nodefaults -display none -no-reboot \
    -gdb "unix:$dir/gdb.sock,server=on,wait=off" -serial "pipe:$dir/con" \
    -kernel "$FAULTLINE_KERNEL" -initrd "$FAULTLINE_INITRD" -d int -D "$dir/exc.log" \
    -append "console=ttyS0 loglevel=4 panic=-1 faultline.scenario=$1" 2>"$dir/qemu.err" &
  qpid=$!
  exec 3<>"$dir/con.in"
  cat "$dir/con.out" >"$dir/console" &
  expect_true "$1: the trigger announced itself" wait_for "$dir/console" FAULTLINE-TRIGGER 90
  local line; line=$(grep -m1 FAULTLINE-TRIGGER "$dir/console")
  pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line"); target=$(sed -n 's/.* target=\(0x[0-9a-f]*\).*/\1/p' <<<"$line")
}
# capture_log JSON ARGS...: faultline capture --exception-log, "go" once attached -> rc
capture_log() {
  local j=$1; shift
  timeout 120 "$FAULTLINE_BIN" capture --gdb "unix:$dir/gdb.sock" --vmlinux "$FAULTLINE_KERNEL" \
    --exception-log "$dir/exc.log" --format json -o "$j" "$@" 2>"$j.err" &
  local fpid=$!
  expect_true "faultline says when it is attached" wait_for "$j.err" "waiting up to" 30
  echo go >&3
  rc=0; wait $fpid || rc=$?
}

user_qemu write-forked
j=$work/capture.json
capture_log "$j" --pid "$pid" --addr "$target"
expect "capture: exit status" "$rc" 0
expect "capture: one fault" "$(jq -s '[.[] | select(.type=="probe")] | length' "$j")" 1
expect "capture: CR2" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "capture: error code" "$(value "$j" asm_exc_page_fault frame.error_code)" 0x6
expect "capture: user CS" "$(value "$j" asm_exc_page_fault frame.cs)" 0x33
expect_true "capture: read from the log" grep -q '"location":"QEMU exception log record [0-9]*"' "$j"
expect "capture: only the entry station" "$(jq -r 'select(.type=="probe") | .function' "$j")" asm_exc_page_fault
# The child faulted on the same address first: the log has two faults on
# target with different CR3s, and faultline reported the parent's.
n_target=$(grep -c "v=0e .* CR2=0*${target#0x}\$" "$dir/exc.log" || true)
expect_true "the log holds the child's fault on the same address too ($n_target)" [ "$n_target" -ge 2 ]
expect_true "the guest ran on: init done" wait_for "$dir/console" "FAULTLINE-DONE scenario=write-forked status=0" 60
kill -9 $qpid 2>/dev/null || true; wait $qpid 2>/dev/null || true; exec 3>&-

# More faults asked for than the process makes: it ends at its exit_mmap.
user_qemu write
j=$work/count.json
capture_log "$j" --pid "$pid" --addr "$target" --count 3
expect "capture --count 3 of a one-fault process: error" "$rc" 2
expect_true "... says the process ended" grep -q "torn down (exit_mmap) after 1 of 3 faults" "$j.err"
expect "... and reports the one fault" "$(value "$j" asm_exc_page_fault cr2)" "$target"
kill -9 $qpid 2>/dev/null || true; wait $qpid 2>/dev/null || true; exec 3>&-; qpid=

# ---- run --entry-log -- PROGRAM ----
cat >"$work/pages.c" <<'C'
#include <sys/mman.h>
int main(void)
{
    volatile char *p = mmap((void *)0x7e0000000000UL, 25 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 2;
    for (int i = 0; i < 25; i++)
        p[i * 4096 + 0x20] = 1;
    return 0;
}
C
cc -static -O1 -o "$work/pages" "$work/pages.c"
r=$work/run.json
rc=0; timeout 180 "$FAULTLINE_BIN" run --entry-log --format json -o "$r" -- "$work/pages" 2>"$work/run.err" || rc=$?
expect "run --entry-log: exit status" "$rc" 0
pages=$(jq -r 'select(.type=="probe") | .values.cr2.value' "$r" | grep -c '^0x7e00000[0-9a-f]*020$' || true)
expect "run --entry-log: one fault per page" "$pages" 25
expect "run --entry-log: the pages in order" \
  "$(jq -r 'select(.type=="probe") | .values.cr2.value' "$r" | grep '^0x7e00000[0-9a-f]*020$' | tr '\n' ' ')" \
  "$(for i in $(seq 0 24); do printf '0x%x ' $((0x7e0000000020 + i * 4096)); done)"
expect "run --entry-log: one address space" \
  "$(jq -r 'select(.type=="probe") | .values.cr3.value' "$r" | sed 's/...$//' | sort -u | wc -l)" 1
expect_true "run --entry-log: the summary counts them" \
  [ "$(jq -r 'select(.type=="summary") | .faults' "$r")" -ge 25 ]
expect_true "no QEMU left of this run" no_qemu_of "$r"

# ---- errors ----
rc=0; "$FAULTLINE_BIN" run --entry-log --probes exc_page_fault >/dev/null 2>"$work/e1" || rc=$?
expect "--entry-log with another station: usage" "$rc" 2
expect_true "... says why" grep -q "entry station only" "$work/e1"
rc=0; "$FAULTLINE_BIN" run --entry-log --trace >/dev/null 2>"$work/e2" || rc=$?
expect "--entry-log --trace: usage" "$rc" 2
rc=0; timeout 60 "$FAULTLINE_BIN" run --entry-log --accel kvm >/dev/null 2>"$work/e3" || rc=$?
expect "--entry-log under kvm: refused" "$rc" 2
expect_true "... says TCG" grep -q "only under TCG" "$work/e3"
rc=0; "$FAULTLINE_BIN" capture --gdb unix:/nonexistent/gdb.sock --vmlinux "$FAULTLINE_KERNEL" \
  --exception-log "$work/none.log" --probes handle_mm_fault >/dev/null 2>"$work/e4" || rc=$?
expect "capture --exception-log with another station: usage" "$rc" 2
finish
