#!/usr/bin/env bash
# faultline diff: write against read. The captures (the stored golden files)
# name X86_PF_WRITE and FAULT_FLAG_WRITE as the bits only `write` has; the
# traces (run live, reproducible) name the X86_PF_WRITE branch of
# access_error as taken differently, align by source line, give a first
# divergence and the functions only one side ran. Same against same is exit
# 0; text, md and json all come out; bad input is one sentence and exit 2.
. "$(dirname "$0")/lib.sh"
golden=$(cd "$(dirname "$0")/../golden" && pwd)
rc=0; "$FAULTLINE_BIN" diff "$golden/write.jsonl" "$golden/read.jsonl" >"$work/cap.txt" || rc=$?
expect "diff write read: exit status (different)" "$rc" 1
expect_true "the error code's X86_PF_WRITE is named as only in write" grep -q 'frame.error_code .*\[only A: X86_PF_WRITE\]' "$work/cap.txt"
expect_true "handle_mm_fault's FAULT_FLAG_WRITE is named as only in write" grep -q 'flags .*0x1255.*0x1254.*\[only A: FAULT_FLAG_WRITE\]' "$work/cap.txt"
expect_true "values that did not change are listed" grep -q 'same: cr2' "$work/cap.txt"
expect_true "the verdict" grep -q '^result: DIFFERENT' "$work/cap.txt"
rc=0; "$FAULTLINE_BIN" diff "$golden/write.jsonl" "$golden/write.jsonl" >"$work/same.txt" || rc=$?
expect "diff write write: exit status" "$rc" 0
rc=0; "$FAULTLINE_BIN" diff --format json "$golden/write.jsonl" "$golden/read.jsonl" >"$work/cap.json" || rc=$?
expect "json: exit status" "$rc" 1
expect_true "json: every line parses" jq -e . "$work/cap.json" >/dev/null
expect "json: FAULT_FLAG_WRITE among handle_mm_fault's bits only in A" \
  "$(jq -r 'select(.type=="fault-diff") | .stations[] | select(.function=="handle_mm_fault") | .values_changed[] | select(.name=="flags") | .bits_only_a[0]' "$work/cap.json")" FAULT_FLAG_WRITE
rc=0; "$FAULTLINE_BIN" diff --format md -o "$work/cap.md" "$golden/write.jsonl" "$golden/read.jsonl" || rc=$?
expect "md: exit status" "$rc" 1
expect_true "md: a value table" grep -q '^| `frame.error_code` | 0x6 |' "$work/cap.md"

for s in write read; do
  rc=0; timeout 600 "$FAULTLINE_BIN" run --reproducible --trace --scenario $s --format json -o "$work/t-$s.json" 2>"$work/t-$s.err" || rc=$?
  expect "trace $s: exit status" "$rc" 0
done
rc=0; "$FAULTLINE_BIN" diff "$work/t-write.json" "$work/t-read.json" >"$work/trace.txt" || rc=$?
expect "diff of the traces: exit status" "$rc" 1
expect_true "the X86_PF_WRITE branch is named as taken differently" grep -q 'BRANCH DIFFERS access_error .*X86_PF_WRITE' "$work/trace.txt"
expect_true "aligned by function and file:line (one kernel)" grep -q 'aligned by function and file:line' "$work/trace.txt"
expect_true "a first divergence, with the path record(s) where it starts" \
  [ "$(grep -A3 'first divergence' "$work/trace.txt" | grep -cE '^      (A|B) t=')" -ge 1 ]
expect_true "functions only the write ran" grep -q 'functions only in A: .*__anon_vma_prepare' "$work/trace.txt"
expect_true "instructions per function side by side" grep -q 'clear_page_erms' "$work/trace.txt"

printf 'not json\n' >"$work/bad.json"
rc=0; err=$("$FAULTLINE_BIN" diff "$work/bad.json" "$golden/write.jsonl" 2>&1 >/dev/null) || rc=$?
expect "bad input: exit status" "$rc" 2
expect "bad input: one line" "$(wc -l <<<"$err")" 1
expect_true "bad input: names the line" grep -q 'bad.json line 1 is not a JSON object' <<<"$err"
rc=0; "$FAULTLINE_BIN" diff "$golden/write.jsonl" 2>/dev/null || rc=$?
expect "one file only: exit status" "$rc" 2
finish
