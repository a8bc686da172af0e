#!/usr/bin/env bash
# --reproducible: two runs of `write` and two of `write --trace` give the
# same output byte for byte once the fields the diff names as variable
# (docs/ci.md: the vm record, times, the passed-over count, source text)
# are taken out; and the modes it cannot make reproducible are refused with
# one sentence.
. "$(dirname "$0")/lib.sh"
# The variable fields, as `faultline diff` lists them (not_compared).
strip() { jq -c 'select(.type != "vm")
  | if .type == "summary" then del(.seconds, .passed_over, .error)
    elif .type == "trace" then del(.seconds, .stops, .resyncs)
    elif .type == "check" then del(.claim)
    elif .type == "probe" then del(.note)
    else . end | del(.source)' "$1"; }
for mode in capture trace; do
  extra=(); [ $mode = trace ] && extra=(--trace)
  for i in 1 2; do
    rc=0; timeout 600 "$FAULTLINE_BIN" run --reproducible --scenario write "${extra[@]}" --format json \
      -o "$work/$mode$i.json" 2>"$work/$mode$i.err" || rc=$?
    expect "$mode run $i: exit status" "$rc" 0
    strip "$work/$mode$i.json" >"$work/$mode$i.stripped"
  done
  expect_true "$mode: the two runs hold records" [ -s "$work/${mode}1.stripped" ]
  expect_true "$mode: the two runs are identical outside the variable fields" cmp -s "$work/${mode}1.stripped" "$work/${mode}2.stripped"
  cmp "$work/${mode}1.stripped" "$work/${mode}2.stripped" | head -3 >&2 || true
  rc=0; "$FAULTLINE_BIN" diff "$work/${mode}1.json" "$work/${mode}2.json" >"$work/$mode.diff" || rc=$?
  expect "$mode: faultline diff finds them the same" "$rc" 0
done
expect "the trace ran back to user mode" "$(jq -r 'select(.type=="trace") | .stop' "$work/trace1.json")" user
expect_true "the trace has thousands of steps" [ "$(jq -r 'select(.type=="trace") | .steps' "$work/trace1.json")" -gt 1000 ]
# The variable-field list the jq filter above uses is the one diff reports.
listed=$(jq -r 'select(.type=="diff") | [.not_compared[].field] | join(" ")' <("$FAULTLINE_BIN" diff --format json "$work/capture1.json" "$work/capture2.json"))
expect "diff's list of fields not compared" "$listed" "vm.* summary.seconds summary.passed_over summary.error trace.seconds trace.stops trace.resyncs *.source probe.note check.claim"
# What cannot be reproducible says so and runs nothing.
rc=0; out=$("$FAULTLINE_BIN" run --reproducible --accel kvm 2>&1) || rc=$?
expect "--reproducible --accel kvm: exit status" "$rc" 2
expect_true "--reproducible --accel kvm: says why" grep -q "needs --accel tcg" <<<"$out"
rc=0; out=$("$FAULTLINE_BIN" run --reproducible --scenario write-forked 2>&1) || rc=$?
expect "--reproducible write-forked: exit status" "$rc" 2
expect_true "--reproducible write-forked: says why" grep -q "told apart only by what the trigger announces" <<<"$out"
expect_true "no QEMU left of these runs" no_qemu_of "$work/trace2.json"
finish
