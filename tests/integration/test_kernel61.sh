#!/usr/bin/env bash
# The second test kernel: Debian's linux-source-6.1 built with the fragment
# (scripts/build-kernel.sh 6.1: per-version lines, cached like the bundled
# one). Its fault path takes mmap_lock (no per-VMA locks): traced
# reproducibly, and diffed against the bundled 6.12 kernel, the diff names
# lock_vma_under_rcu as only in 6.12 and lock_mm_and_find_vma as only in
# 6.1. Skips (77) when the source package cannot be installed here.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
rc=0; kdir=$("$top/scripts/build-kernel.sh" 6.1 2>"$work/build.err") || rc=$?
if [ "$rc" = 3 ] && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source-6.1 >"$work/apt.log" 2>&1 || true
  rc=0; kdir=$("$top/scripts/build-kernel.sh" 6.1 2>"$work/build.err") || rc=$?
fi
if [ "$rc" = 3 ]; then echo "linux-source-6.1 is not installed and cannot be installed here"; exit 77; fi
expect "building (or finding) the 6.1 kernel: exit status" "$rc" 0
[ "$rc" = 0 ] || { tail -5 "$work/build.err" >&2; finish; }
expect_true "page-table isolation is off under its 6.1 name" bash -c "! grep -q '^CONFIG_PAGE_TABLE_ISOLATION=y' '$kdir/src/.config'"
expect_true "kprobes on (6.1 needs MODULES for it)" grep -qx 'CONFIG_KPROBES=y' "$kdir/src/.config"
expect_true "6.1 has no per-VMA locks" bash -c "! grep -q '^CONFIG_PER_VMA_LOCK=y' '$kdir/src/.config'"
for k in 6.12 6.1; do
  kern=$FAULTLINE_KERNEL; [ $k = 6.1 ] && kern=$kdir/vmlinux
  rc=0; timeout 600 "$FAULTLINE_BIN" run --reproducible --trace --kernel "$kern" --format json -o "$work/t$k.json" \
    2>"$work/t$k.err" || rc=$?
  expect "trace on $k: exit status" "$rc" 0
  expect "trace on $k: back in user mode" "$(jq -r 'select(.type=="trace") | .stop' "$work/t$k.json")" user
done
expect_true "the 6.1 trace has source lines" [ "$(jq -s '[.[] | select(.type=="line" and .function=="do_user_addr_fault" and (.source | length) > 0)] | length' "$work/t6.1.json")" -gt 0 ]
# The capture with default options: the per-VMA station is not in this
# kernel, everything else holds; against the stored 6.12 capture the flags
# lose FAULT_FLAG_VMA_LOCK.
rc=0; timeout 600 "$FAULTLINE_BIN" run --reproducible --kernel "$kdir/vmlinux" --format json -o "$work/c6.1.json" \
  2>"$work/c6.1.err" || rc=$?
expect "capture on 6.1: exit status" "$rc" 0
expect "capture on 6.1: lock_vma_under_rcu" "$(jq -r 'select(.type=="probe" and .function=="lock_vma_under_rcu") | .status' "$work/c6.1.json")" "not in this kernel"
expect "capture on 6.1: checks that failed" "$(jq -r 'select(.type=="summary") | .failed' "$work/c6.1.json")" 0
golden=$(cd "$(dirname "$0")/../golden" && pwd)
rc=0; "$FAULTLINE_BIN" diff "$golden/write.jsonl" "$work/c6.1.json" >"$work/cdiff.txt" || rc=$?
expect "diff of the captures 6.12 6.1: exit status" "$rc" 1
expect_true "handle_mm_fault's flags lose FAULT_FLAG_VMA_LOCK on 6.1" grep -q 'flags .*0x1255.*0x255.*\[only A: FAULT_FLAG_VMA_LOCK\]' "$work/cdiff.txt"
# Both kernels in one matrix (--kernel twice): a testsuite per kernel.
rc=0; timeout 900 "$FAULTLINE_BIN" matrix --scenarios write,read --kernel "$FAULTLINE_KERNEL" --kernel "$kdir/vmlinux" \
  --jobs 2 --out "$work/m" --junit "$work/m.xml" >"$work/m.out" 2>&1 || rc=$?
expect "matrix over both kernels: exit status" "$rc" 0
expect "matrix over both kernels: four cells passed" "$(grep -c '^matrix: 4 passed, 0 failed, 0 skipped' "$work/m.out")" 1
expect "matrix over both kernels: one testsuite per kernel" "$(grep -c '<testsuite ' "$work/m.xml")" 2
rc=0; "$FAULTLINE_BIN" diff "$work/t6.12.json" "$work/t6.1.json" >"$work/diff.txt" || rc=$?
expect "diff 6.12 6.1: exit status" "$rc" 1
expect_true "aligned by source text across kernels" grep -q 'aligned by function and source text' "$work/diff.txt"
expect_true "lock_vma_under_rcu only in 6.12" grep -q 'functions only in A: .*lock_vma_under_rcu' "$work/diff.txt"
expect_true "lock_mm_and_find_vma only in 6.1" grep -q 'functions only in B: .*lock_mm_and_find_vma' "$work/diff.txt"
finish
