#!/usr/bin/env bash
# faultline trace from the command line: the write fault stepped from
# asm_exc_page_fault back to user mode, in single and fast mode, as JSON Lines
# and as a Chrome trace-event file.
. "$(dirname "$0")/lib.sh"
j=$work/trace.json
rc=0; timeout 300 "$FAULTLINE_BIN" trace --format json -o "$j" || rc=$?
expect "trace: exit status" "$rc" 0
tr() { jq -r "select(.type==\"trace\") | .$1" "$j"; }
expect "trace: stopped back in user mode" "$(tr stop)" user
expect "trace: final CS is the user's" "$(tr final_cs)" 0x33
expect "trace: starts at asm_exc_page_fault's entry" "$(tr start_pc)" "$(jq -r 'select(.type=="probe" and .function=="asm_exc_page_fault") | .pc' "$j")"
expect "trace: returns to the faulting instruction" "$(tr final_pc)" "$(jq -r 'select(.type=="trigger") | .instruction_address' "$j")"
expect_true "trace: thousands of instructions" [ "$(tr steps)" -ge 1000 ]
expect "trace: one step record per instruction" "$(jq -s '[.[] | select(.type=="step")] | length' "$j")" "$(tr steps)"
for f in error_entry exc_page_fault do_user_addr_fault lock_vma_under_rcu handle_mm_fault; do
  expect_true "trace passes $f" [ "$(jq -r --arg f "$f" 'select(.type=="step" and .function==$f) | .i' "$j" | head -1)" != "" ]
done
expect "trace: the last instruction is iretq" "$(jq -r 'select(.type=="step") | .insn' "$j" | tail -1 | cut -d' ' -f1)" iretq
# swapgs: the kernel's per-cpu base moves from KERNEL_GS_BASE into GS_BASE
swapgs=$(jq -c 'select(.type=="line" and (.source | startswith("swapgs")))' "$j" | head -1)
expect_true "trace: the entry's swapgs changes gs_base" [ "$(jq -r '.changed.gs_base // "none"' <<<"$swapgs")" != none ]
expect "trace: ...and k_gs_base gets the user's (0 here)" "$(jq -r '.changed.k_gs_base // "none"' <<<"$swapgs")" 0x0
expect "trace: the capture's checks held" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "no QEMU left of this run" no_qemu_of "$j"

f=$work/fast.json
rc=0; timeout 300 "$FAULTLINE_BIN" trace --mode fast --format json -o "$f" || rc=$?
expect "fast: exit status" "$rc" 0
expect "fast: stopped back in user mode" "$(jq -r 'select(.type=="trace") | .stop' "$f")" user
expect "fast: fewer stops than instructions" "$(jq -r 'select(.type=="trace") | .stops < .steps' "$f")" true

c=$work/trace.chrome.json
rc=0; timeout 300 "$FAULTLINE_BIN" run --trace --mode fast --format chrome -o "$c" || rc=$?
expect "chrome: exit status" "$rc" 0
expect_true "chrome: one valid JSON document with complete (X) slices" \
  [ "$(jq '[(.traceEvents // .)[] | select(.ph=="X")] | length' "$c")" -ge 10 ]
expect "chrome: a slice for handle_mm_fault" "$(jq -r '[(.traceEvents // .)[] | select(.name=="handle_mm_fault")] | length > 0' "$c")" true
finish
