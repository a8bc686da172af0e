#!/usr/bin/env bash
# The accelerator matrix: TCG always (every other run_* test uses it); KVM
# when the bounded probe says a guest boots under it here, otherwise a line
# saying why it was skipped. --accel auto must pick what the probe decided.
. "$(dirname "$0")/lib.sh"
j=$work/auto.json
rc=0; timeout 300 "$FAULTLINE_BIN" run --accel auto --format json -o "$j" 2>"$work/err" || rc=$?
accel=$(jq -r 'select(.type=="vm") | .accel' "$j")
verdict="${FAULTLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faultline}/kvm-verdict"
expect_true "the KVM probe left a cached verdict" [ -s "$verdict" ]
if [ "$accel" = kvm ]; then
  echo "kvm: the probe says KVM boots the guest here; capturing under KVM"
  expect "capture under KVM: exit status" "$rc" 0
  expect "capture under KVM: handle_mm_fault flags" "$(value "$j" handle_mm_fault flags)" 0x1255
  expect "capture under KVM: checks that failed" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j")" 0
else
  why=$(sed -n 3p "$verdict")
  echo "kvm: skipped: ${why:-the probe said no}"
  expect "auto fell back to tcg" "$accel" tcg
  expect "the fallback is said on stderr" "$(grep -c 'using tcg' "$work/err")" 1
  expect "capture under the fallback: exit status" "$rc" 0
fi
expect_true "no QEMU left of this run, and its private directory removed" no_qemu_of "$j"
finish
