#!/usr/bin/env bash
# Golden files: `run --scenario S --expect tests/golden/S.jsonl` passes
# (exit 0) for each stored scenario (all.jsonl: every scenario reproducible
# mode runs, in one boot); given another scenario's file it fails
# with exit 1 and prints the diff; --update-expect writes a file that
# compares equal to the stored one.
. "$(dirname "$0")/lib.sh"
golden=$(cd "$(dirname "$0")/../golden" && pwd)
for f in "$golden"/*.jsonl; do
  s=$(basename "$f" .jsonl) # the scenario it holds (all: every one reproducible mode runs)
  rc=0; timeout 600 "$FAULTLINE_BIN" run --scenario "$s" --expect "$f" >"$work/$s.out" 2>"$work/$s.err" || rc=$?
  expect "$s against its golden file: exit status" "$rc" 0
  expect_true "$s: the diff says the same" grep -q '^result: the same' "$work/$s.out"
  [ "$rc" = 0 ] || sed 's/^/    /' "$work/$s.out" | grep -v ' same: ' | head -40 >&2
done
rc=0; timeout 600 "$FAULTLINE_BIN" run --scenario write --expect "$golden/read.jsonl" >"$work/wrong.out" 2>"$work/wrong.err" || rc=$?
expect "write against read's golden file: exit status" "$rc" 1
expect_true "the diff is printed" grep -q '^result: DIFFERENT' "$work/wrong.out"
expect_true "the diff names the bit" grep -q 'only B: X86_PF_WRITE' "$work/wrong.out"
expect_true "stderr says which file differs" grep -q "differs from $golden/read.jsonl" "$work/wrong.err"
rc=0; timeout 600 "$FAULTLINE_BIN" run --scenario read --expect "$work/new.jsonl" --update-expect 2>"$work/up.err" || rc=$?
expect "--update-expect: exit status" "$rc" 0
rc=0; "$FAULTLINE_BIN" diff "$golden/read.jsonl" "$work/new.jsonl" >/dev/null || rc=$?
expect "the rewritten file equals the stored one" "$rc" 0
rc=0; out=$("$FAULTLINE_BIN" run --update-expect 2>&1) || rc=$?
expect "--update-expect without --expect: exit status" "$rc" 2
expect_true "--update-expect without --expect: says so" grep -q 'needs --expect FILE' <<<"$out"
finish
