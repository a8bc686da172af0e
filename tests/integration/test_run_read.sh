#!/usr/bin/env bash
# First read of a fresh anonymous page: U set, W clear, no FAULT_FLAG_WRITE.
. "$(dirname "$0")/lib.sh"
j=$work/read.json
rc=0; "$FAULTLINE_BIN" run --scenario read --format json -o "$j" || rc=$?
expect "exit status" "$rc" 0
target=$(jq -r 'select(.type=="trigger") | .target' "$j")
expect "CR2" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "error code (U only)" "$(value "$j" asm_exc_page_fault frame.error_code)" 0x4
flags=$(value "$j" handle_mm_fault flags)
expect "no FAULT_FLAG_WRITE" "$(( flags & 0x1 ))" 0
expect "FAULT_FLAG_USER" "$(( flags & 0x40 ))" 64
expect "per-VMA lock path (FAULT_FLAG_VMA_LOCK)" "$(( flags & 0x1000 ))" 4096
expect "checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "no QEMU left of this run, and its private directory removed" no_qemu_of "$j"
finish
