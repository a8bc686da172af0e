#!/usr/bin/env bash
# Faults during the trace phase: SIGINT while stepping ends the trace at once
# with what was stepped (stop "interrupted", exit 130); QEMU killed while
# stepping ends it with a clear error (exit 2). Both: the report is whole and
# nothing is left running.
. "$(dirname "$0")/lib.sh"
# Wait until the entry station's record is out: the trace starts right after.
wait_entry() { local i; for ((i = 0; i < 600; i++)); do grep -q '"function":"asm_exc_page_fault","hit":true' "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

j=$work/int.json
"$FAULTLINE_BIN" trace --format json -o "$j" 2>"$work/int.err" & fpid=$!
expect_true "SIGINT: the entry was captured" wait_entry "$j"
sleep 0.5
kill -INT $fpid
rc=0; wait $fpid || rc=$?
expect "SIGINT during the trace: exit status 130" "$rc" 130
expect "SIGINT: the trace says it was interrupted" "$(jq -r 'select(.type=="trace") | .stop' "$j")" interrupted
expect_true "SIGINT: the steps taken are written" [ "$(jq -s '[.[] | select(.type=="step")] | length' "$j")" -gt 0 ]
expect "SIGINT: the summary names the signal" "$(jq -r 'select(.type=="summary") | .error' "$j")" "interrupted by SIGINT"
expect "SIGINT: one line on stderr" "$(wc -l < "$work/int.err")" 1
expect_true "SIGINT: no QEMU left of this run" no_qemu_of "$j"

k=$work/kill.json
"$FAULTLINE_BIN" trace --format json -o "$k" 2>"$work/kill.err" & fpid=$!
expect_true "QEMU killed: the entry was captured" wait_entry "$k"
sleep 0.5
qpid=$(pgrep -P $fpid -x qemu-system-x86 || true)
expect_true "QEMU killed: found faultline's QEMU" [ -n "$qpid" ]
[ -n "$qpid" ] && kill -9 $qpid
rc=0; timeout 60 tail --pid=$fpid -f /dev/null; wait $fpid || rc=$?
expect "QEMU killed during the trace: exit status 2" "$rc" 2
expect "QEMU killed: the trace ended in an error" "$(jq -r 'select(.type=="trace") | .stop' "$k")" error
expect_true "QEMU killed: the summary says why" [ "$(jq -r 'select(.type=="summary") | .error' "$k")" != null ]
expect "QEMU killed: one line on stderr" "$(wc -l < "$work/kill.err")" 1
expect_true "QEMU killed: no QEMU left of this run" no_qemu_of "$k"
finish
