#!/usr/bin/env bash
# bench/bench_run.sh: issue 5's "Speed". Measures, end to end with a warm
# cache, `faultline run --scenario write` and the same capture done by GDB in
# batch mode (hardware breakpoints with a CR2 condition, bench_run_gdb.gdb)
# against the same VM (same QEMU flags, kernel, initramfs, command line), and
# prints both medians and the ratios. The aim: the whole verified report in
# under 3 s under TCG.
#
# Usage: bench/bench_run.sh [RUNS]      (default 3; or BENCH_RUNS=N)
#
# What each side's time covers, from its start to its exit:
#  - faultline: its whole process (load the kernel's DWARF, start QEMU, boot,
#    wait for the announcement, arm 6 stations, "go", capture, checks, report,
#    wait for the guest's FAULTLINE-DONE and QEMU's exit).
#  - GDB: QEMU's start to GDB's exit. GDB starts with QEMU and loads vmlinux
#    while the guest boots, waits for the trigger's announcement on the
#    console (a FIFO: -serial pipe:), attaches, arms the same 6 stations,
#    sends "go" (the same protocol faultline uses: nothing is armed during the
#    boot), prints what faultline reads at each stop, and kills the guest.
#    GDB checks nothing and does not wait for the guest to finish.
# One run of each is made first and not counted (page cache, GDB's index).
# Runs alternate faultline, GDB, faultline, ... so drift hits both.
#
# A benchmark: it never fails on slowness, only on errors (faultline's exit
# status, GDB missing a station, a tool missing); every wait is bounded.
# Exit: 0 measured, 2 error.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
runs=${1:-${BENCH_RUNS:-3}}
die() { printf 'bench_run: %s\n' "$*" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]?$ ]] || die "RUNS must be a number from 1 to 99, not '$runs'"

faultline=$top/bin/faultline
kernel=${FAULTLINE_KERNEL:-$top/build/vm/vmlinux}
initrd=${FAULTLINE_INITRD:-$top/build/vm/initramfs.cpio.gz}
qemu=${QEMU:-qemu-system-x86_64}
template=$top/bench/bench_run_gdb.gdb
[ -x "$faultline" ] || die "no $faultline: run 'make' first"
[ -r "$kernel" ] && [ -r "$initrd" ] || die "no guest at $kernel / $initrd: run 'make vm' first"
command -v gdb >/dev/null || die "gdb is missing: apt-get install gdb"
command -v "$qemu" >/dev/null || die "$qemu is missing: install qemu-system-x86"
[ -r "$template" ] || die "$template is missing"
# The trigger's address is deterministic (vm/triggers/trigger.c: page hint
# 0x7f0000000000, target page + 0x100); GDB's conditions use it, and the
# announcement GDB waits for is checked against it below.
page=0x7f0000000000 target=0x7f0000000100

dir=$(mktemp -d "${TMPDIR:-/tmp}/faultline-bench.XXXXXX")
chmod 0700 "$dir"
qpid=
cleanup() {
  if [ -n "$qpid" ]; then
    kill "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
    qpid=
  fi
}
trap 'cleanup; rm -rf "$dir"' EXIT
trap 'exit 2' INT TERM HUP

now() { printf '%s' "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Both run in this shell, never in a subshell, so the EXIT trap always knows
# QEMU's pid; they leave their seconds in r_wall, r_boot (to the trigger's
# announcement) and r_rep (faultline's own total, from its summary line).
r_wall='' r_boot='' r_rep=''
# One faultline run.
fl_run() {
  local out=$dir/faultline.txt t0 t1 rc=0
  t0=$(now)
  FAULTLINE_KERNEL=$kernel FAULTLINE_INITRD=$initrd \
    timeout -k 5 120 "$faultline" run --scenario write --accel tcg --format text -o "$out" 2>"$dir/faultline.err" || rc=$?
  t1=$(now)
  if [ "$rc" -ne 0 ]; then
    cat "$dir/faultline.err" >&2; tail -n 5 "$out" >&2 2>/dev/null || true
    die "faultline run --scenario write exited $rc (1: a check failed, 2: an error, 124: killed after 120 s)"
  fi
  local boot rep
  boot=$(sed -n 's/.*booted to the trigger in \([0-9.]*\) s.*/\1/p' "$out" | head -1)
  rep=$(sed -n 's/^summary: .*, \([0-9.]*\) s.*/\1/p' "$out" | tail -1)
  grep -q '^summary: 1 fault captured, [0-9]* checks, 0 failed' "$out" || die "faultline's summary is not one fault with 0 failed checks: $(grep '^summary' "$out")"
  r_wall=$(sub "$t1" "$t0") r_boot=${boot:-?} r_rep=${rep:-?}
}

# One GDB run (r_boot: QEMU's start to the announcement GDB read).
gdb_run() {
  local d=$dir/gdb t0 t1 rc=0
  rm -rf "$d"; mkdir -m 0700 "$d"
  mkfifo "$d/con.in" "$d/con.out"
  sed -e "s|@VMLINUX@|$kernel|g; s|@DIR@|$d|g; s|@TARGET@|$target|g; s|@PAGE@|$page|g" "$template" >"$d/capture.gdb"
  # Hold both FIFOs open read-write: QEMU's opens never block, and neither
  # side sees EOF while the other is restarting.
  exec 3<>"$d/con.in" 4<>"$d/con.out"
  t0=$(now)
  "$qemu" -accel tcg -cpu max -m 256 -smp 1 -nodefaults -display none -no-reboot \
    -gdb "unix:$d/gdb.sock,server=on,wait=off" -serial "pipe:$d/con" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 loglevel=4 panic=-1 faultline.scenario=write" \
    </dev/null >"$d/qemu.log" 2>&1 3>&- 4>&- &
  qpid=$!
  timeout -k 5 120 gdb -batch -nx -x "$d/capture.gdb" </dev/null >"$d/gdb.out" 2>&1 3>&- 4>&- || rc=$?
  t1=$(now)
  exec 3>&- 4>&-
  cleanup
  tr -d '\r' <"$d/gdb.out" >"$d/gdb.txt" # the console's lines end in \r\n
  # `kill` at the end makes QEMU exit, and GDB reports the lost connection
  # as an error (exit 1): judge by what it printed, not by its status.
  local missing=
  for f in asm_exc_page_fault exc_page_fault do_user_addr_fault lock_vma_under_rcu handle_mm_fault handle_pte_fault; do
    grep -q "^gdb-bench: station $f\$" "$d/gdb.txt" || missing="$missing $f"
  done
  if [ -n "$missing" ] || ! grep -q '^gdb-bench: captured$' "$d/gdb.txt" ||
     ! grep -q "^gdb-bench: FAULTLINE-TRIGGER scenario=write .*target=$target\$" "$d/gdb.txt" ||
     ! grep -q '^\$[0-9]* = 0x1255$' "$d/gdb.txt"; then
    tail -n 20 "$d/gdb.txt" >&2; tail -n 5 "$d/qemu.log" >&2
    die "GDB did not capture the write fault (exit $rc; stations missing:${missing:- none})"
  fi
  local ann
  ann=$(sed -n 's/^gdb-bench: announced-at \([0-9.]*\)$/\1/p' "$d/gdb.txt")
  r_boot='?'
  [ -n "$ann" ] && r_boot=$(sub "$ann" "$t0")
  r_wall=$(sub "$t1" "$t0") r_rep=''
}

printf 'bench_run: %s, QEMU %s, kernel %s\n' "$(gdb --version | head -1)" \
  "$("$qemu" --version | head -1 | sed 's/QEMU emulator version //')" "$(cat "$top/build/vm/kernel-version" 2>/dev/null || basename "$kernel")"
printf 'bench_run: warming up (one run of each, not counted)\n'
cat "$kernel" "$initrd" "$faultline" >/dev/null
fl_run
gdb_run

fl_wall=() fl_boot=() fl_rep=() gdb_wall=() gdb_boot=()
for ((i = 1; i <= runs; i++)); do
  fl_run
  fl_wall+=("$r_wall"); fl_boot+=("$r_boot"); fl_rep+=("$r_rep")
  gdb_run
  gdb_wall+=("$r_wall"); gdb_boot+=("$r_boot")
  printf 'run %d: faultline %s s (booted to the trigger in %s s, its summary says %s s)   gdb %s s (announcement at %s s)\n' \
    "$i" "${fl_wall[-1]}" "${fl_boot[-1]}" "${fl_rep[-1]}" "${gdb_wall[-1]}" "${gdb_boot[-1]}"
done
nums() { local v; for v in "$@"; do [ "$v" != "?" ] && printf '%s ' "$v"; done; }
fm=$(median "${fl_wall[@]}") gm=$(median "${gdb_wall[@]}")
# shellcheck disable=SC2046 # word splitting of nums is the point
fb=$(median $(nums "${fl_boot[@]}")) gb=$(median $(nums "${gdb_boot[@]}"))
echo
printf 'faultline run --scenario write (verified report): median %s s over %d runs (boot to the trigger %s s, the rest %s s)\n' \
  "$fm" "$runs" "$fb" "$(sub "$fm" "$fb")"
printf 'gdb -batch, same capture, no checks:              median %s s over %d runs (boot to the trigger %s s, the rest %s s)\n' \
  "$gm" "$runs" "$gb" "$(sub "$gm" "$gb")"
awk -v f="$fm" -v g="$gm" 'BEGIN { printf "ratio: faultline/gdb %.2f, gdb/faultline %.2f\n", f / g, g / f }'
awk -v f="$fm" 'BEGIN { printf "aim (whole verified report under 3 s under TCG): %s (%.2f s)\n", f < 3 ? "met" : "NOT met", f }'
