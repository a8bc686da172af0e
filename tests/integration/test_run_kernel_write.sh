#!/usr/bin/env bash
# read(2) into an untouched page: the kernel faults on a user address in kernel mode.
. "$(dirname "$0")/lib.sh"
j=$work/kw.json
rc=0; "$FAULTLINE_BIN" run --scenario kernel-write --format json -o "$j" || rc=$?
expect "exit status" "$rc" 0
target=$(jq -r 'select(.type=="trigger") | .target' "$j")
expect "CR2" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "hardware frame CS (kernel)" "$(value "$j" asm_exc_page_fault frame.cs)" 0x10
expect "pt_regs->cs (kernel)" "$(value "$j" exc_page_fault regs-\>cs)" 0x10
err=$(value "$j" asm_exc_page_fault frame.error_code)
expect "error code W set" "$(( err & 0x2 ))" 2
expect "error code U clear" "$(( err & 0x4 ))" 0
flags=$(value "$j" handle_mm_fault flags)
expect "no FAULT_FLAG_USER" "$(( flags & 0x40 ))" 0
expect "FAULT_FLAG_WRITE" "$(( flags & 0x1 ))" 1
expect "lock_vma_under_rcu is skipped for kernel-mode faults" "$(hit "$j" lock_vma_under_rcu)" false
expect "faulting instruction is in the kernel (top bit set)" "$(( ($(jq -r 'select(.type=="trigger") | .instruction_address' "$j") >> 63) & 1 ))" 1
expect "checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "no QEMU left of this run, and its private directory removed" no_qemu_of "$j"
finish
