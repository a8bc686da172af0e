#!/usr/bin/env bash
# The shared fault filters on `run -- PROGRAM` (issue 17): a static program
# that maps 8 fresh pages at a fixed address and writes one byte into each
# (8 user-mode write faults it knows it takes), then reads a file.
#  --count 0 --probes asm_exc_page_fault: every fault of the program, the
#     eight among them, the run ends when the program does (status 0);
#  --range LO-HI --nth 3: the third fault in its buffer;
#  --addr VA: the fault on that address only;
#  --fault-mode kernel: a kernel-mode fault (error code without X86_PF_USER);
#  trace --range ... --: the trace of the selected fault.
# Guards cmd_select.c (range, mode, nth) and the --count loop of cmd_run.c.
. "$(dirname "$0")/lib.sh"
cat >"$work/pages.c" <<'C'
#include <stdio.h>
#include <sys/mman.h>
int main(void)
{
    char *p = mmap((void *)0x7e0000000000, 8 * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return 4;
    for (int i = 0; i < 8; i++)
        p[i * 4096 + 0x10] = (char)i;
    int touched = 0;
    for (int i = 0; i < 8; i++)
        touched += p[i * 4096 + 0x10] == (char)i;
    printf("pages touched: %d\n", touched);
    return touched == 8 ? 0 : 3;
}
C
cc -static -O1 -o "$work/pages" "$work/pages.c"
entry() { jq -r 'select(.type=="probe" and .function=="asm_exc_page_fault" and .hit) | .values.cr2.value' "$1"; }
ecode() { jq -r 'select(.type=="probe" and .function=="asm_exc_page_fault" and .hit) | .values["frame.error_code"].value' "$1"; }
in_buffer() { grep -cE '^0x7e000000[0-7]010$' || true; }

# ---- --count 0: every fault ----
j=$work/all.json
rc=0; timeout 300 "$FAULTLINE_BIN" run --count 0 --probes asm_exc_page_fault --format json -o "$j" -- "$work/pages" \
  2>"$work/all.err" || rc=$?
expect "--count 0: exit status (the program's own check held)" "$rc" 0
n=$(entry "$j" | wc -l)
expect_true "--count 0: many faults of the program ($n)" [ "$n" -ge 9 ]
expect "--count 0: the eight buffer faults, once each" "$(entry "$j" | in_buffer)" 8
expect "--count 0: the summary counts every fault" "$(tail -n1 "$j" | jq -r .faults)" "$n"
expect "--count 0: every fault is the program's" "$(jq -r 'select(.type=="probe" and .hit) | .comm' "$j" | sort -u)" pages
expect_true "--count 0: ended by the program's end" grep -q "the program ended" "$work/all.err"
expect "--count 0: no error in the summary" "$(tail -n1 "$j" | jq -r '.error // "none"')" none

# ---- --range and --nth: the third fault in the buffer, at every station ----
j=$work/range.json
rc=0; timeout 300 "$FAULTLINE_BIN" run --range 0x7e0000000000-0x7e0000008000 --nth 3 --format json -o "$j" \
  -- "$work/pages" || rc=$?
expect "--range --nth 3: exit status" "$rc" 0
expect "--range --nth 3: one fault, the third page's" "$(entry "$j")" 0x7e0000002010
expect "--range --nth 3: a user-mode write (X86_PF_USER|X86_PF_WRITE)" "$(ecode "$j")" 0x6
expect "--range --nth 3: handle_mm_fault saw the same address" "$(value "$j" handle_mm_fault address)" 0x7e0000002010
expect "--range --nth 3: the checks held" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0

# ---- --addr: that fault only ----
j=$work/addr.json
rc=0; timeout 300 "$FAULTLINE_BIN" run --addr 0x7e0000005010 --probes asm_exc_page_fault --format json -o "$j" \
  -- "$work/pages" || rc=$?
expect "--addr: exit status" "$rc" 0
expect "--addr: the fault on that address" "$(entry "$j")" 0x7e0000005010

# ---- --fault-mode kernel --count 2: kernel-mode faults only ----
j=$work/kernel.json
rc=0; timeout 300 "$FAULTLINE_BIN" run --fault-mode kernel --count 2 --probes asm_exc_page_fault --format json \
  -o "$j" -- "$work/pages" || rc=$?
expect "--fault-mode kernel: exit status" "$rc" 0
expect "--fault-mode kernel: two faults" "$(ecode "$j" | wc -l)" 2
expect "--fault-mode kernel: none has X86_PF_USER (bit 2)" \
  "$(ecode "$j" | while read -r e; do echo $(( e & 4 )); done | sort -u)" 0

# ---- --count N beyond what the program takes: it ends with the program ----
# (not after the whole --timeout), exit 2, saying how many of N it got, and
# the report holds those it did.
j=$work/more.json
rc=0; t0=$(now)
timeout 300 "$FAULTLINE_BIN" run --range 0x7e0000000000-0x7e0000008000 --count 20 --timeout 60 \
  --probes asm_exc_page_fault --format json -o "$j" -- "$work/pages" 2>"$work/more.err" || rc=$?
el=$(secs_since "$t0")
expect "--count 20 of 8: exit status" "$rc" 2
expect_true "--count 20 of 8: says how many ($(cat "$work/more.err"))" grep -q "the program ended after 8 of the 20" "$work/more.err"
expect_true "--count 20 of 8: ends with the program, not the 60 s timeout ($el s)" lt "$el" 40
expect "--count 20 of 8: the report holds the eight" "$(entry "$j" | in_buffer)" 8

# ---- trace with a filter: the selected fault is the one stepped ----
j=$work/trace.json
rc=0; timeout 300 "$FAULTLINE_BIN" trace --mode fast --range 0x7e0000001000-0x7e0000002000 --format json -o "$j" \
  -- "$work/pages" || rc=$?
expect "trace --range: exit status" "$rc" 0
expect "trace --range: the fault on the second page" "$(entry "$j")" 0x7e0000001010
expect "trace --range: stepped back to user mode" "$(jq -r 'select(.type=="trace") | .stop' "$j")" user
finish
