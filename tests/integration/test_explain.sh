#!/usr/bin/env bash
# faultline trace --view explain from the command line (write scenario): the
# JSON line records carry the C variables, the branch, the calls with their
# arguments and the returns; the narrative's checks hold; --format md is the
# narrative with the source verbatim ('|' kept); --function/--depth narrow it.
. "$(dirname "$0")/lib.sh"
j=$work/explain.json
rc=0; timeout 300 "$FAULTLINE_BIN" trace --view explain --format json -o "$j" || rc=$?
expect "explain json: exit status" "$rc" 0
line() { jq -c --arg s "$1" 'select(.type=="line" and .function=="do_user_addr_fault" and .source==$s)' "$j"; }
w=$(line 'flags |= FAULT_FLAG_WRITE;' | jq -c 'select(.vars.flags)' | head -1)
expect "flags |= FAULT_FLAG_WRITE: flags becomes 0x215" "$(jq -r '.vars.flags.value' <<<"$w")" 0x215
expect "...from 0x214" "$(jq -r '.vars.flags.was' <<<"$w")" 0x214
expect_true "...decoded by enum fault_flag" grep -q 'FAULT_FLAG_WRITE|' <<<"$(jq -r '.vars.flags.decoded' <<<"$w")"
u=$(line 'flags |= FAULT_FLAG_USER;' | jq -c 'select(.vars.flags)' | head -1)
expect "flags |= FAULT_FLAG_USER: flags becomes 0x255" "$(jq -r '.vars.flags.value' <<<"$u")" 0x255
m=$(line 'if (user_mode(regs))' | head -1)
expect "if (user_mode(regs)): goes on at the next line (flags |= FAULT_FLAG_USER)" \
  "$(jq -r '.branch.to_line' <<<"$m")" "$(jq -r '.line + 1' <<<"$m")"
call() { jq -c --arg f "$1" 'select(.type=="line") | .call[] | select(.function==$f)' "$j" | head -1; }
expect "handle_mm_fault is called with flags 0x1255" "$(call handle_mm_fault | jq -r '.args.flags.value')" 0x1255
lv=$(call lock_vma_under_rcu)
expect "lock_vma_under_rcu gets CR2 as address" "$(jq -r '.args.address.value' <<<"$lv")" \
  "$(jq -r 'select(.type=="probe" and .function=="asm_exc_page_fault") | .values.cr2.value' "$j")"
ret=$(jq -r 'select(.type=="line") | .ret[] | select(.function=="lock_vma_under_rcu") | .value' "$j" | head -1)
expect "lock_vma_under_rcu's return is handle_mm_fault's vma" "$ret" "$(call handle_mm_fault | jq -r '.args.vma.value')"
expect_true "the narrative's checks are there" [ "$(jq -s '[.[] | select(.type=="check" and .of=="trace")] | length' "$j")" -ge 4 ]
expect "...and hold" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect "no step records in the explain view" "$(jq -s '[.[] | select(.type=="step")] | length' "$j")" 0

md=$work/explain.md
rc=0; timeout 300 "$FAULTLINE_BIN" trace --format md -o "$md" || rc=$?
expect "md: exit status" "$rc" 0
expect_true "md: the trace is the narrative" grep -q '^## Complete trace, explained' "$md"
expect_true "md: one ### entry per line, source verbatim with what changed" \
  grep -q '^`flags |= FAULT_FLAG_WRITE;`: flags = 0x215 FAULT_FLAG_WRITE|' "$md"
expect_true "md: '|' kept in source lines" grep -qF '(error_code & (X86_PF_USER | X86_PF_INSTR))' "$md"
expect_true "md: the checks table" grep -q '^| flags-handed-to-handle_mm_fault | .* | 0x1255 | 0x1255 | PASS |$' "$md"

t=$work/explain.txt
rc=0; timeout 300 "$FAULTLINE_BIN" trace --view explain --function do_user_addr_fault --depth 1 -o "$t" || rc=$?
expect "--function/--depth: exit status" "$rc" 0
first=$(grep -m1 '^t=' "$t")
expect_true "--function: the narrative starts in do_user_addr_fault ($first)" grep -q 'do_user_addr_fault' <<<"$first"
expect_true "--function: what comes before is summarised" grep -q 'instructions not narrated' "$t"
expect_true "--depth 1: handle_mm_fault is a call with its count" grep -q 'calls handle_mm_fault(vma=0x.*instructions' "$t"
expect_true "--depth 1: nothing two calls deep (__handle_mm_fault's lines)" \
  bash -c "! grep -q '^t=[0-9 ]* *__handle_mm_fault ' '$t'"
finish
