#!/usr/bin/env bash
# faultline matrix: two scenarios x tcg,kvm with two jobs writes valid JUnit
# XML (parsed here by a real XML parser, python3's xml.etree) with one
# testcase per cell, kvm cells skipped with the probe's reason where KVM
# does not boot; the same cells run as two shards and merged give the same
# testcases; a SIGTERM to the matrix ends it with 143 and leaves no cell
# process or QEMU behind.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "python3 (xml.etree) is needed to parse the JUnit file"; exit 77; }
junit_cases() { # junit_cases FILE -> "classname name status" lines, sorted
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
n = 0
for suite in root.iter("testsuite"):
    for case in suite.iter("testcase"):
        status = "pass"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = tag + ":" + el.get("message", "")
        print(case.get("classname").split(".")[-1], case.get("name"), status)
        n += 1
assert int(root.get("tests")) == n, (root.get("tests"), n)
PY
}
rc=0; timeout 900 "$FAULTLINE_BIN" matrix --scenarios write,read --accel tcg,kvm --jobs 2 --out "$work/all" \
  --junit "$work/all.xml" >"$work/all.out" 2>"$work/all.err" || rc=$?
expect "matrix: exit status" "$rc" 0
cat "$work/all.out"
junit_cases "$work/all.xml" | sort >"$work/all.cases" || true
expect "one testcase per cell" "$(wc -l <"$work/all.cases")" 4
expect "the tcg cells passed" "$(grep -c '^tcg .* pass$' "$work/all.cases")" 2
kvm_ok=$(grep -c '^kvm .* pass$' "$work/all.cases" || true)
kvm_skipped=$(grep -c '^kvm .* skipped:KVM unusable here: ' "$work/all.cases" || true)
expect "each kvm cell passed or was skipped with the reason" "$((kvm_ok + kvm_skipped))" 2
expect_true "the table has one row per cell" [ "$(grep -cE '^  (write|read) ' "$work/all.out")" -eq 4 ]
for s in write read; do
  expect "the $s cell's report is kept" "$(jq -r 'select(.type=="summary") | .failed' "$work"/all/$s.*.tcg/report.jsonl)" 0
done

# Two shards of the same matrix, merged.
for k in 1 2; do
  rc=0; timeout 900 "$FAULTLINE_BIN" matrix --scenarios write,read --accel tcg,kvm --jobs 2 --shard $k/2 \
    --out "$work/s$k" >"$work/s$k.out" 2>&1 || rc=$?
  expect "shard $k/2: exit status" "$rc" 0
  expect "shard $k/2: two of the four cells" "$(ls "$work/s$k" | wc -l)" 2
done
rc=0; "$FAULTLINE_BIN" matrix --merge "$work/s1" "$work/s2" --junit "$work/merged.xml" >"$work/merged.out" || rc=$?
expect "merge: exit status" "$rc" 0
junit_cases "$work/merged.xml" | sort >"$work/merged.cases" || true
expect "the merged shards hold the same testcases" "$(cat "$work/merged.cases")" "$(cat "$work/all.cases")"

# Bad input: one sentence, exit 2, nothing run.
rc=0; out=$("$FAULTLINE_BIN" matrix --shard 3/2 2>&1) || rc=$?
expect "--shard 3/2: exit status" "$rc" 2
expect_true "--shard 3/2: says what is wanted" grep -q 'K/N with 1 <= K <= N' <<<"$out"
rc=0; out=$("$FAULTLINE_BIN" matrix --merge 2>&1) || rc=$?
expect "--merge without directories: exit status" "$rc" 2

# A cell over its time limit is stopped and fails; the matrix says so.
rc=0; timeout 120 "$FAULTLINE_BIN" matrix --scenarios write --timeout 1 --out "$work/slow" --junit "$work/slow.xml" \
  >"$work/slow.out" 2>&1 || rc=$?
expect "a cell over its limit: exit status" "$rc" 1
expect "a cell over its limit: its testcase fails" "$(junit_cases "$work/slow.xml" | grep -cE '^tcg write (failure|error):')" 1
expect_true "a cell over its limit: no QEMU left of it" no_qemu_of "$work/slow/write.$(ls "$work/slow" | sed -n 's/^write\.\(.*\)\.tcg$/\1/p').tcg/report.jsonl"

# SIGTERM: the matrix stops its cells and reaps them.
start_fl "$work/sig.out" "$work/sig.err" matrix --scenarios write,read --jobs 2 --out "$work/sig"
n=0; while [ $n -lt 300 ] && ! pgrep -P "$(pgrep -P "$fpid" | head -1)" -x qemu-system-x86 >/dev/null 2>&1; do sleep 0.1; n=$((n + 1)); done
cells=$(pgrep -P "$fpid" | tr '\n' ' ')
qemus=$(for c in $cells; do pgrep -P "$c" -x qemu-system-x86; done | tr '\n' ' ')
expect_true "cells were running" [ -n "$cells" ]
kill -TERM "$fpid"
wait_exit 60
expect "SIGTERM: exit status" "$rc" 143
left=""; for p in $cells $qemus; do alive "$p" && left="$left $p"; done
expect "no cell or QEMU left" "$left" ""
finish
