#!/usr/bin/env bash
# The seed's case: first write to a fresh anonymous page, every station live.
. "$(dirname "$0")/lib.sh"
j=$work/write.json
rc=0; "$FAULTLINE_BIN" run --scenario write --format json -o "$j" || rc=$?
expect "exit status (0: every check held)" "$rc" 0
target=$(jq -r 'select(.type=="trigger") | .target' "$j")
page=$(jq -r 'select(.type=="trigger") | .page' "$j")
expect "target is page + 0x100" "$target" "$(hex "$page + 0x100")"
expect "CR2 at asm_exc_page_fault" "$(value "$j" asm_exc_page_fault cr2)" "$target"
expect "hardware error code (W|U)" "$(value "$j" asm_exc_page_fault frame.error_code)" 0x6
expect "hardware frame CS (user)" "$(value "$j" asm_exc_page_fault frame.cs)" 0x33
expect "CPU CS at entry (kernel)" "$(value "$j" asm_exc_page_fault cs)" 0x10
expect "user RFLAGS had IF" "$(( $(value "$j" asm_exc_page_fault frame.rflags) & 0x200 ))" 512
expect "CPU RFLAGS IF cleared by the gate" "$(( $(value "$j" asm_exc_page_fault eflags) & 0x200 ))" 0
expect "exc_page_fault error_code" "$(value "$j" exc_page_fault error_code)" 0x6
expect "pt_regs->cs" "$(value "$j" exc_page_fault regs-\>cs)" 0x33
expect "pt_regs->ip is the frame's RIP" "$(value "$j" exc_page_fault regs-\>ip)" "$(value "$j" asm_exc_page_fault frame.rip)"
expect "pt_regs->orig_ax (-1 after the entry code)" "$(value "$j" exc_page_fault regs-\>orig_ax)" 0xffffffffffffffff
expect "do_user_addr_fault address" "$(value "$j" do_user_addr_fault address)" "$target"
expect "lock_vma_under_rcu address" "$(value "$j" lock_vma_under_rcu address)" "$target"
expect "handle_mm_fault flags (the seed's 0x1255)" "$(value "$j" handle_mm_fault flags)" 0x1255
expect "handle_mm_fault flags decoded" "$(jq -r 'select(.type=="probe" and .function=="handle_mm_fault") | .values.flags.decoded' "$j")" \
  "FAULT_FLAG_WRITE|FAULT_FLAG_ALLOW_RETRY|FAULT_FLAG_KILLABLE|FAULT_FLAG_USER|FAULT_FLAG_INTERRUPTIBLE|FAULT_FLAG_VMA_LOCK"
expect "vmf->address is the page" "$(value "$j" handle_pte_fault vmf-\>address)" "$page"
expect "vmf->flags" "$(value "$j" handle_pte_fault vmf-\>flags)" 0x1255
expect "current comm" "$(jq -r 'select(.type=="probe" and .function=="exc_page_fault") | .comm' "$j")" fl-write
expect "checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "at least 20 checks computed" [ "$(jq -s '[.[] | select(.type=="check")] | length' "$j")" -ge 20 ]
for c in cr2-matches-target ea-matches-cr2 error-code-exc pt-regs-ip pt-regs-cs address-mm-fault vmf-address-page \
         write-bit-agrees user-bit-agrees cpl-agrees-user-bit if-cleared-by-gate fault-flags-sum mm-is-current scenario-access; do
  expect "check $c ran and held" "$(jq -r --arg c "$c" 'select(.type=="check" and .name==$c) | .ok' "$j")" true
done
# kprobes' verdict, derived from vmlinux as the kernel's own blacklist is built
kp() { jq -r --arg f "$2" 'select(.type=="probe" and .function==$f) | "\(.kprobe_refused) \(.kprobe)"' "$1"; }
expect "kprobes refuse asm_exc_page_fault" "$(kp "$j" asm_exc_page_fault)" "true in .entry.text (x86 entry code)"
expect "kprobes refuse exc_page_fault" "$(kp "$j" exc_page_fault)" "true in .noinstr.text (marked noinstr)"
expect "kprobes refuse do_user_addr_fault" "$(kp "$j" do_user_addr_fault)" "true NOKPROBE_SYMBOL(do_user_addr_fault)"
expect "kprobes allow lock_vma_under_rcu" "$(kp "$j" lock_vma_under_rcu)" "false allowed"
expect "kprobes allow handle_mm_fault" "$(kp "$j" handle_mm_fault)" "false allowed"
for f in asm_exc_page_fault exc_page_fault do_user_addr_fault lock_vma_under_rcu handle_mm_fault handle_pte_fault; do
  expect "the guest's own kprobe blacklist agrees on $f" \
    "$(jq -r --arg c "kprobe-verdict-$f" 'select(.type=="check" and .name==$c) | .ok' "$j")" true
done
expect "summary: no error" "$(jq -r 'select(.type=="summary") | .error' "$j")" null
expect_true "no QEMU left of this run, and its private directory removed" no_qemu_of "$j"
# The worksheet: the seed's flag proof, computed.
m=$work/write.md
"$FAULTLINE_BIN" run --scenario write --format md -o "$m"
expect_true "worksheet lists FAULT_FLAG_VMA_LOCK as bit 12" grep -q '`0x1000`: FAULT_FLAG_VMA_LOCK (bit 12)' "$m"
expect_true "worksheet sums to 0x1255 with a check mark" grep -q 'SUM\*\*: `0x1255` ✓' "$m"
finish
