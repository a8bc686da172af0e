#!/usr/bin/env bash
# bench/bench_reproducible.sh: what --reproducible costs (docs/ci.md).
# Measures `faultline run --scenario write` and `run --trace` with and
# without --reproducible on the bundled VM, alternating the two so drift hits
# both, and prints the medians and the ratios reproducible / usual for:
#  - boot: QEMU's start to the trigger (the vm record's boot_seconds: the
#    announcement in the usual flow, the trigger's exec when reproducible);
#  - trace: the single-stepping alone (the trace record's seconds);
#  - total: the whole process, start to exit.
# The reference is the usual mode measured in the same run.
#
# Usage: bench/bench_reproducible.sh [RUNS]   (default 3; or BENCH_RUNS=N)
# A benchmark: it fails only on errors, never on slowness. Exit 0 or 2.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
fl=${FAULTLINE_BIN:-$top/bin/faultline}
export FAULTLINE_KERNEL=${FAULTLINE_KERNEL:-$top/build/vm/vmlinux}
export FAULTLINE_INITRD=${FAULTLINE_INITRD:-$top/build/vm/initramfs.cpio.gz}
runs=${1:-${BENCH_RUNS:-3}}
for f in "$fl" "$FAULTLINE_KERNEL" "$FAULTLINE_INITRD"; do
  [ -e "$f" ] || { echo "bench_reproducible: $f is missing: run 'make all vm' first" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "bench_reproducible: jq is missing (scripts/install-deps.sh)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }

# one MODE KIND OUT: a run; appends "boot trace total" to OUT
one() {
  local mode=$1 kind=$2 out=$3 args=(run --scenario write --format json -o "$work/r.json") t0 rc=0
  [ "$mode" = reproducible ] && args+=(--reproducible)
  [ "$kind" = trace ] && args+=(--trace)
  t0=$(now)
  timeout 900 "$fl" "${args[@]}" 2>"$work/err" || rc=$?
  if [ "$rc" != 0 ]; then echo "bench_reproducible: faultline ${args[*]} exited $rc: $(tail -1 "$work/err")" >&2; exit 2; fi
  printf '%s %s %s\n' "$(jq -r 'select(.type=="vm") | .boot_seconds' "$work/r.json")" \
    "$(jq -r 'select(.type=="trace") | .seconds' "$work/r.json" | grep . || echo 0)" \
    "$(echo "$(now) - $t0" | bc)" >>"$out"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
ratio() { echo "scale=2; $1 / $2" | bc; }

for kind in capture trace; do
  one usual $kind /dev/null # warm-up, not counted
  for i in $(seq "$runs"); do
    one usual $kind "$work/usual-$kind"
    one reproducible $kind "$work/repro-$kind"
  done
done
printf '%-26s %10s %14s %7s\n' "median of $runs (seconds)" usual reproducible ratio
for kind in capture trace; do
  for c in 1:boot 2:trace 3:total; do
    n=${c%%:*} what=${c#*:}
    [ "$kind" = capture ] && [ "$what" = trace ] && continue
    u=$(col "$n" "$work/usual-$kind") r=$(col "$n" "$work/repro-$kind")
    printf '%-26s %10.2f %14.2f %7s\n' "run $( [ $kind = trace ] && echo '--trace ')$what" "$u" "$r" "$(ratio "$r" "$u")x"
  done
done
