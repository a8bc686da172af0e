#!/usr/bin/env bash
# faultline run -- PROGRAM ARGS: the user's static program rides in an appended
# archive; its first fault is captured (not the fault of the shell that
# announced and exec'd it), its arguments arrive, and its exit status counts.
. "$(dirname "$0")/lib.sh"
cat >"$work/myprog.c" <<'C'
#include <sys/mman.h>
int main(int argc, char **argv)
{
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0x234] = argc > 1 ? argv[1][0] : 0;
    return argc == 2 && argv[1][0] == 'h' && p[0x234] == 'h' ? 0 : 3; /* checks its own data */
}
C
cc -static -O1 -o "$work/myprog" "$work/myprog.c"
j=$work/prog.json
rc=0; timeout 120 "$FAULTLINE_BIN" run --format json -o "$j" -- "$work/myprog" hello || rc=$?
expect "exit status" "$rc" 0
expect "announced as a program" "$(jq -r 'select(.type=="trigger") | .scenario' "$j")" program
expect "announced with the program's comm" "$(jq -r 'select(.type=="trigger") | .comm' "$j")" myprog
pid=$(jq -r 'select(.type=="trigger") | .pid' "$j")
expect "the captured fault is the program's (comm)" "$(jq -r 'select(.type=="probe" and .function=="exc_page_fault") | .comm' "$j")" myprog
expect "the captured fault is the program's (pid)" "$(jq -r 'select(.type=="probe" and .function=="exc_page_fault") | .pid' "$j")" "$pid"
expect "checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "no QEMU left of this run" no_qemu_of "$j"
# Without its argument the program fails its own check: faultline says so.
rc=0; timeout 120 "$FAULTLINE_BIN" run -o /dev/null -- "$work/myprog" 2>"$work/err" || rc=$?
expect "a failing program: exit status 1" "$rc" 1
expect_true "a failing program: said on stderr" grep -q "status=3" "$work/err"
# The program's archive (a copy of the program, any size) is removed as soon
# as QEMU has its initrd: a SIGKILL of faultline afterwards leaves no copy
# behind (issue 16, item 6). TMPDIR keeps this run's temporary files apart.
mkdir -p "$work/tmp"
TMPDIR=$work/tmp "$FAULTLINE_BIN" run --timeout 60 -o /dev/null -- "$work/myprog" hello >/dev/null 2>&1 & fpid=$!
expect_true "SIGKILL once QEMU runs: QEMU started" wait_qemu 30
kill -9 "$fpid" 2>/dev/null || true
wait "$fpid" 2>/dev/null || true
expect "SIGKILL once QEMU runs: no copy of the program left" "$(ls -A "$work/tmp" | grep -c '^faultline-program-' || true)" 0
n=30; while [ -n "${qpid:-}" ] && alive "$qpid" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
case "${qdir:-}" in /tmp/faultline-??????) rm -rf -- "$qdir" ;; esac

# A dynamically linked program cannot run in the guest (no loader, no
# libraries): refused before anything boots, with the fix (issue 16, item 7).
# Guards cmd_guest.c's PT_INTERP check.
cc -O1 -o "$work/dynprog" "$work/myprog.c"
rc=0; s=$(date +%s.%N)
timeout 60 "$FAULTLINE_BIN" run -o "$work/dyn.txt" -- "$work/dynprog" hello >/dev/null 2>"$work/err" || rc=$?
el=$(echo "$(date +%s.%N) - $s" | bc)
expect "a dynamic program: exit status" "$rc" 2
expect "a dynamic program: one line on stderr" "$(wc -l <"$work/err")" 1
expect_true "a dynamic program: says it is dynamically linked ($(cat "$work/err"))" grep -q "dynamically linked" "$work/err"
expect_true "a dynamic program: gives the fix" grep -q "cc -static" "$work/err"
expect_true "a dynamic program: refused before any boot ($el s)" [ "$(echo "$el < 3" | bc)" = 1 ]
expect_true "a dynamic program: no report file" test ! -e "$work/dyn.txt"
finish
