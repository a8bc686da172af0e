#!/usr/bin/env bash
# The whole catalog through the CLI in one boot: `run --scenario all --format
# json`. Every scenario's fault is captured and followed to its end; its
# outcome record must carry the error code, resolver and classification this
# table states (independently of src/scenario.c), every check must hold, and
# the page tables must show what the kind of fault means. A Markdown run of
# one scenario must carry the outcome section too.
. "$(dirname "$0")/lib.sh"
j=$work/all.json
rc=0; "$FAULTLINE_BIN" run --scenario all --format json -o "$j" || rc=$?
expect "exit status" "$rc" 0
# scenario|error code (hardware frame)|resolver|classification begins
table='write|0x6|do_anonymous_page|anonymous first write: zero-filled page
read|0x4|do_anonymous_page|anonymous first read: the shared zero page
kernel-write|0x2|do_anonymous_page|anonymous first write: zero-filled page
write-forked|0x6|do_anonymous_page|anonymous first write: zero-filled page
cow|0x7|wp_page_copy|COW: page
file-read|0x4|do_read_fault|file read: page-cache page
exec|0x14|do_anonymous_page|anonymous first instruction fetch: the shared zero page
segv-write|0x6|bad_area_access_error|SIGSEGV (SEGV_ACCERR): write to a read-only mapping
null|0x4|bad_area_nosemaphore|SIGSEGV (SEGV_MAPERR): read of 0x0
kernel-fixup|0x2|fixup_exception|kernel access to a bad user address fixed up
stack-grow|0x6|do_anonymous_page|stack grown from'
# Each outcome record with the scenario of the trigger record before it.
outcomes=$work/outcomes.json
jq -s -c 'reduce .[] as $r ({s: null, ec: null, out: []};
    if $r.type == "trigger" then .s = $r.scenario
    elif $r.type == "probe" and $r.function == "asm_exc_page_fault" then .ec = $r.values["frame.error_code"].value
    elif $r.type == "outcome" then .out += [$r + {scenario: .s, frame_error_code: .ec}]
    else . end) | .out[]' "$j" >"$outcomes"
expect "one outcome per scenario" "$(wc -l <"$outcomes")" "$(echo "$table" | wc -l)"
field() { jq -r --arg s "$1" "select(.scenario == \$s) | $2" "$outcomes"; }
while IFS='|' read -r sc ec resolver class; do
  expect "$sc: error code" "$(field "$sc" .frame_error_code)" "$ec"
  expect "$sc: resolver" "$(field "$sc" .resolver)" "$resolver"
  got=$(field "$sc" .classification)
  expect "$sc: classification begins '$class' ($got)" "${got:0:${#class}}" "$class"
  expect "$sc: outcome checks that failed" "$(field "$sc" '[.checks[] | select(.ok == false)] | length')" 0
  expect_true "$sc: at least 2 outcome checks" [ "$(field "$sc" '.checks | length')" -ge 2 ]
done <<<"$table"
# What the page tables say, by kind.
expect "write: not present before" "$(field write .before.mapped)" false
expect "write: present, writable, user after" "$(field write '[.after.mapped, .after.writable, .after.user] | all')" true
expect "cow: two different frames" "$(field cow '.before.frame != .after.frame')" true
expect "cow: the parent keeps the old frame" "$(field cow '.parent.walk.frame == .before.frame')" true
expect "read: read-only after" "$(field read .after.writable)" false
expect "exec: executable after" "$(field exec .after.nx)" false
expect "segv-write: entries unchanged" "$(field segv-write .change)" unchanged
expect "segv-write: SIGSEGV pending" "$(field segv-write '[.signal.name, .signal.pending] | @tsv')" "SIGSEGV	true"
expect "null: SEGV_MAPERR at 0x0" "$(field null '[.signal.si_code_name, .signal.si_addr] | @tsv')" "SEGV_MAPERR	0x0"
expect "kernel-fixup: ip moved to the fixup" "$(field kernel-fixup '.fixup.to != .fixup.from')" true
expect "stack-grow: the VMA grew" "$(field stack-grow .vma.grew)" true
expect "file-read: the file" "$(field file-read .vma.file)" /bin/fl-trigger
expect "vm_flags names come from the kernel" "$(field write '.vma.names_from | startswith("vm_flags names from the kernel")')" true
expect "capture checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
expect_true "no QEMU left of this run" no_qemu_of "$j"
# Markdown: the outcome section with its page-table rows.
m=$work/cow.md
rc=0; "$FAULTLINE_BIN" run --scenario cow --format md -o "$m" || rc=$?
expect "md: exit status" "$rc" 0
expect_true "md: the outcome section" grep -q '^### Outcome' "$m"
expect_true "md: the COW classification" grep -q '^\*\*COW: page 0x' "$m"
expect_true "md: the PTE row" grep -q '^| PTE |' "$m"
finish
