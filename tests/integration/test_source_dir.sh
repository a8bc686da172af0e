#!/usr/bin/env bash
# Source lines for a kernel built elsewhere (issue 13), attached to a QEMU
# booting the second test kernel (6.1, scripts/build-kernel.sh 6.1) with
# every scenario, three captures of the first three triggers' faults one
# after another on the same guest:
# 1. default options: the paths its DWARF records resolve, so every station
#    has its source text, and the per-VMA station is "not in this kernel";
# 2. its source tree hidden (a private mount namespace lays an empty tmpfs
#    over it) and no cache to unpack Debian's tarball into: one note on
#    stderr, no source text, the capture itself fine;
# 3. the tree hidden, and --source-dir naming it under another name (a bind
#    mount): the DWARF paths' tails are found there, source text again.
# Skips (77) when the 6.1 kernel is not built and cannot be, or when this
# user cannot make a mount namespace.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64"; exit 77; }
[ -r "$FAULTLINE_INITRD" ] || { echo "no initramfs $FAULTLINE_INITRD: run 'make vm'"; exit 77; }
rc=0; kdir=$("$top/scripts/build-kernel.sh" 6.1 2>"$work/build.err") || rc=$?
[ "$rc" = 0 ] || { echo "the 6.1 test kernel is not built (scripts/build-kernel.sh 6.1: exit $rc)"; exit 77; }
unshare -m true 2>/dev/null || { echo "cannot make a mount namespace (unshare -m) to hide the source tree"; exit 77; }
mkdir -m 0700 "$work/q"; mkfifo "$work/q/con.in" "$work/q/con.out"
qemu-system-x86_64 -accel tcg -cpu max -m 256 -smp 1 -nodefaults -display none -no-reboot -S \
  -gdb "unix:$work/q/gdb.sock,server=on,wait=off" -serial "pipe:$work/q/con" \
  -kernel "$kdir/vmlinux" -initrd "$FAULTLINE_INITRD" \
  -append "console=ttyS0 loglevel=4 panic=-1 faultline.scenario=all" 2>"$work/qemu.err" &
qpid=$!
trap 'rc=$?; kill -9 $qpid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; exit $rc' EXIT
exec 3<>"$work/q/con.in"
cat "$work/q/con.out" >"$work/console" &
n=100; while [ ! -S "$work/q/gdb.sock" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
wait_for() { local i; for ((i = 0; i < $3 * 10; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# take N NAME VMLINUX [PREFIX...] -- [OPTIONS...]: capture the N-th trigger's
# fault, then tell it to go. Its comm and target come from its announcement;
# the first trigger's (write's) are known in advance, since the guest starts
# halted and announces only once a capture has continued it.
announced() { [ "$(grep -c FAULTLINE-TRIGGER "$work/console" 2>/dev/null)" -ge "$1" ]; }
take() {
  local n=$1 name=$2 vml=$3; shift 3; local pre=(); while [ "$1" != -- ]; do pre+=("$1"); shift; done; shift
  local comm=fl-write target=0x7f0000000100 line i
  if [ "$n" -gt 1 ]; then
    for ((i = 0; i < 600; i++)); do announced "$n" && break; sleep 0.2; done
    line=$(grep FAULTLINE-TRIGGER "$work/console" | sed -n "${n}p")
    comm=$(sed -n 's/.* comm=\([^ ]*\).*/\1/p' <<<"$line"); target=$(sed -n 's/.* target=\(0x[0-9a-f]*\).*/\1/p' <<<"$line")
  fi
  timeout 300 "${pre[@]}" "$FAULTLINE_BIN" capture --gdb "unix:$work/q/gdb.sock" --vmlinux "$vml" \
    --comm "$comm" --addr "$target" --count 1 --timeout 120 --format json -o "$work/$name.json" "$@" \
    2>"$work/$name.err" & local fpid=$!
  wait_for "$work/$name.err" "waiting up to" 60 || true
  for ((i = 0; i < 600; i++)); do announced "$n" && break; sleep 0.2; done
  echo go >&3
  rc=0; wait $fpid || rc=$?
  expect "$name: exit status" "$rc" 0
  [ "$rc" = 0 ] || cat "$work/$name.err" >&2
  expect "$name: the fault is the trigger's ($comm)" "$(value "$work/$name.json" asm_exc_page_fault cr2)" "$target"
}
src_of() { jq -r --arg f "$2" 'select(.type=="probe" and .function==$f) | "\(.location) \(.source // "")"' "$1"; }
# The command line, with the 6.1 tree hidden and bind-mounted at $work/tree
# (the vmlinux is in the tree: it is read from there).
hide() {
  echo "mkdir -p '$work/tree' && mount --bind '$kdir/src' '$work/tree' && mount -t tmpfs none '$kdir/src' && exec \"\$@\""
}

take 1 default "$kdir/vmlinux" --
expect "default: lock_vma_under_rcu" "$(jq -r 'select(.type=="probe" and .function=="lock_vma_under_rcu") | .status' "$work/default.json")" \
  "not in this kernel"
expect "default: checks that failed" "$(jq -r 'select(.type=="summary") | .failed' "$work/default.json")" 0
expect_true "default: handle_mm_fault's line in mm/memory.c with its text ($(src_of "$work/default.json" handle_mm_fault))" \
  grep -qE '^mm/memory\.c:[0-9]+ .+' <<<"$(src_of "$work/default.json" handle_mm_fault)"
expect "default: no note about source" "$(grep -c 'no source text' "$work/default.err" || true)" 0

take 2 hidden "$work/tree/vmlinux" env -u HOME -u XDG_CACHE_HOME unshare -m bash -c "$(hide)" bash --
expect "hidden: one note that there is no source text" "$(grep -c '^faultline: note: no source text' "$work/hidden.err" || true)" 1
expect "hidden: no station has source text" \
  "$(jq -s '[.[] | select(.type=="probe" and (.source // "") != "")] | length' "$work/hidden.json")" 0
expect "hidden: the capture itself is whole (handle_mm_fault hit)" \
  "$(jq -r 'select(.type=="probe" and .function=="handle_mm_fault") | .hit' "$work/hidden.json")" true

take 3 subst "$work/tree/vmlinux" unshare -m bash -c "$(hide)" bash -- --source-dir "$work/tree"
# (the location keeps the recorded path: the kernel layer strips the prefix
# only when the vmlinux sits at the top of the tree its DWARF names)
expect_true "--source-dir: handle_mm_fault's line in mm/memory.c with its text ($(src_of "$work/subst.json" handle_mm_fault))" \
  grep -qE '^(.*/)?mm/memory\.c:[0-9]+ .+' <<<"$(src_of "$work/subst.json" handle_mm_fault)"
line=$(src_of "$work/subst.json" handle_mm_fault | sed -E 's/^[^:]*:([0-9]+).*/\1/')
expect "--source-dir: the text of that line in the tree" "$(src_of "$work/subst.json" handle_mm_fault | cut -d' ' -f2-)" \
  "$(sed -n "${line}p" "$kdir/src/mm/memory.c" | sed -E 's/^[[:space:]]+//')"
expect "--source-dir: no note about source" "$(grep -c 'no source text' "$work/subst.err" || true)" 0
finish
