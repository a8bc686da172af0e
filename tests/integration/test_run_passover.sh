#!/usr/bin/env bash
# The filter, shown: scenario write-forked (vm/triggers/trigger.c) forks a
# child before announcing; after "go" the child writes the SAME virtual
# address first (a fresh anonymous fault in its own mm: same CR2, same error
# code 6, same flags 0x1255, same comm) and exits, then the announced parent
# writes. Filtering by the announced pid, faultline must pass the child's
# fault over, count it, and capture the parent's.
. "$(dirname "$0")/lib.sh"
j=$work/forked.json
rc=0; "$FAULTLINE_BIN" run --scenario write-forked --format json -o "$j" || rc=$?
expect "exit status (0: every check held)" "$rc" 0
pid=$(jq -r 'select(.type=="trigger") | .pid' "$j")
comm=$(jq -r 'select(.type=="trigger") | .comm' "$j")
target=$(jq -r 'select(.type=="trigger") | .target' "$j")
page=$(jq -r 'select(.type=="trigger") | .page' "$j")
expect "announced comm" "$comm" fl-write-forked
expect "target is page + 0x100" "$target" "$(hex "$page + 0x100")"
passed=$(jq -r 'select(.type=="summary") | .passed_over' "$j")
expect_true "the child's fault was passed over (summary.passed_over=$passed >= 1)" [ "${passed:-0}" -ge 1 ]
expect "faults captured" "$(jq -r 'select(.type=="summary") | .faults' "$j")" 1
# The captured fault is the announced parent's, not the child's (same comm:
# only the pid tells them apart).
for st in asm_exc_page_fault exc_page_fault; do
  expect "$st: current pid is the trigger's" "$(jq -r --arg f "$st" 'select(.type=="probe" and .function==$f) | .pid' "$j")" "$pid"
done
expect "current comm" "$(jq -r 'select(.type=="probe" and .function=="exc_page_fault") | .comm' "$j")" "$comm"
expect "CR2 at asm_exc_page_fault is the target" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "hardware error code (W|U)" "$(value "$j" asm_exc_page_fault frame.error_code)" 0x6
expect "handle_mm_fault address" "$(value "$j" handle_mm_fault address)" "$target"
expect "handle_mm_fault flags (as write: 0x1255)" "$(value "$j" handle_mm_fault flags)" 0x1255
expect "vmf->address is the page" "$(value "$j" handle_pte_fault vmf-\>address)" "$page"
for c in current-is-trigger cr2-matches-target mm-is-current address-mm-fault write-bit-agrees user-bit-agrees scenario-access; do
  expect "check $c ran and held" "$(jq -r --arg c "$c" 'select(.type=="check" and .name==$c) | .ok' "$j")" true
done
expect "current-is-trigger expected the announced pid" \
  "$(jq -r 'select(.type=="check" and .name=="current-is-trigger") | .expected' "$j")" "$pid"
expect "checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect "summary: no error" "$(jq -r 'select(.type=="summary") | .error' "$j")" null
expect_true "no QEMU left of this run, and its private directory removed" no_qemu_of "$j"
finish
