#!/usr/bin/env bash
# Runs test programs and prints one closing line "LABEL: N passed, N failed,
# N skipped". Exit status 77 is a skip (the test cannot run here): it is
# counted apart and printed with its reason, the last line the test printed.
# Usage: tests/run.sh LABEL PROGRAM...
#  - build/fuzz/fuzz_X runs libFuzzer for FUZZ_SECONDS (default 15) on its
#    corpus tests/fuzz/corpus/fuzz_X (kept regression inputs) plus a scratch one;
#  - *.sh runs with bash; anything else is executed.
# Every program gets a hard timeout, and the guest files from build/vm.
set -u
label=$1; shift
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export FAULTLINE_KERNEL="${FAULTLINE_KERNEL:-$top/build/vm/vmlinux}"
export FAULTLINE_INITRD="${FAULTLINE_INITRD:-$top/build/vm/initramfs.cpio.gz}"
export FAULTLINE_BIN="$top/bin/faultline"
fuzz_seconds=${FUZZ_SECONDS:-15}
passed=0 failed=0 skipped=0 failures=""
logdir="$top/build/test-logs"; mkdir -p "$logdir"
for t in "$@"; do
  name=$(basename "$t")
  case "$t" in */tests-asan/*) name="asan/$name" ;; esac
  log="$logdir/${name//\//_}.log"
  start=$(date +%s.%N)
  case "$t" in
    */fuzz/fuzz_*)
      corpus="$top/tests/fuzz/corpus/$name"; scratch=$(mktemp -d)
      mkdir -p "$corpus"
      # libFuzzer's own failures exit 77 by default, the skip status here.
      timeout -k 5 $((fuzz_seconds + 60)) "$t" -max_total_time="$fuzz_seconds" -timeout=5 -error_exitcode=1 \
        -rss_limit_mb=2048 -artifact_prefix="$logdir/$name-" "$scratch" "$corpus" >"$log" 2>&1
      rc=$?; rm -rf "$scratch" ;;
    *.sh) timeout -k 5 900 bash "$t" >"$log" 2>&1; rc=$? ;;
    *) timeout -k 5 600 "$t" >"$log" 2>&1; rc=$? ;;
  esac
  secs=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
  if [ $rc -eq 77 ]; then
    skipped=$((skipped + 1))
    printf 'SKIP %-40s %6ss  (%s)\n' "$name" "$secs" "$(grep -v '^[[:space:]]*$' "$log" | tail -1)"
  elif [ $rc -eq 0 ]; then
    passed=$((passed + 1)); printf 'PASS %-40s %6ss  %s\n' "$name" "$secs" "$(grep -E 'passed, [0-9]+ failed' "$log" | tail -1)"
  else
    failed=$((failed + 1)); failures="$failures $name"
    printf 'FAIL %-40s %6ss  (exit %d; log %s)\n' "$name" "$secs" "$rc" "$log"
    tail -n 15 "$log" | sed 's/^/     | /'
  fi
done
[ -n "$failures" ] && echo "failed:$failures"
echo "$label: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
