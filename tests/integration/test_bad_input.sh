#!/usr/bin/env bash
# Bad input on the command line and in files (issue 7), beyond what
# test_cli_errors.sh covers: stripped, truncated, empty, non-x86 (AArch64 and
# 32-bit i386 ELF) and directory vmlinux files, to both `capture --vmlinux`
# and `run --kernel`; a non-station probe for capture; malformed --gdb
# addresses; output paths that cannot be written; out-of-range numbers.
# Each: exit status 2, exactly one line on stderr that names the culprit,
# and it fails fast, before any VM or connection exists (guards the
# validation order in main.c: options, output file, vmlinux, then boot or
# connect), so nothing is left running.
. "$(dirname "$0")/lib.sh"
bad() { # bad DESCRIPTION EXPECTED-REGEX ARGS...
  local d=$1 want=$2; shift 2
  local rc=0 s; s=$(date +%s.%N)
  timeout 30 "$FAULTLINE_BIN" "$@" >"$work/out" 2>"$work/err" || rc=$?
  local el; el=$(echo "$(date +%s.%N) - $s" | bc)
  expect "$d: exit status" "$rc" 2
  expect "$d: one line on stderr" "$(wc -l <"$work/err")" 1
  expect_true "$d: says /$want/ ($(head -c 300 "$work/err"))" grep -qE -- "$want" "$work/err"
  expect_true "$d: fails fast, before any boot or connect ($el s)" [ "$(echo "$el < 3" | bc)" = 1 ]
}
K=$FAULTLINE_KERNEL
nogdb=unix:$work/nobody-listens.sock

# ---- files that are not a usable x86-64 vmlinux ----
strip -o "$work/vmlinux.stripped" "$K"
head -c 4096 "$K" >"$work/vmlinux.truncated"
: >"$work/vmlinux.empty"
# Minimal ELF headers: 64-bit little-endian AArch64 (e_machine 183) and 32-bit
# i386 (e_machine 3) executables with no sections.
python3 - "$work" <<'PY'
import struct, sys
d = sys.argv[1]
ident64 = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8)
h64 = ident64 + struct.pack('<HHIQQQIHHHHHH', 2, 183, 1, 0x400000, 0, 0, 0, 64, 56, 0, 64, 0, 0)
open(d + '/vmlinux.aarch64', 'wb').write(h64 + bytes(4096))
ident32 = b'\x7fELF' + bytes([1, 1, 1, 0]) + bytes(8)
h32 = ident32 + struct.pack('<HHIIIIIHHHHHH', 2, 3, 1, 0x8048000, 0, 0, 0, 52, 32, 0, 40, 0, 0)
open(d + '/vmlinux.i386', 'wb').write(h32 + bytes(4096))
PY
for cmd in capture run; do
  if [ $cmd = capture ]; then pre=(capture --gdb "$nogdb" --vmlinux); else pre=(run --timeout 5 --kernel); fi
  bad "$cmd: stripped vmlinux" "stripped|symbol table|DWARF|debug" "${pre[@]}" "$work/vmlinux.stripped"
  bad "$cmd: truncated vmlinux" "vmlinux.truncated" "${pre[@]}" "$work/vmlinux.truncated"
  bad "$cmd: empty vmlinux" "vmlinux.empty" "${pre[@]}" "$work/vmlinux.empty"
  bad "$cmd: AArch64 ELF as vmlinux" "x86-64|x86_64|AArch64|aarch64|machine" "${pre[@]}" "$work/vmlinux.aarch64"
  bad "$cmd: 32-bit i386 ELF as vmlinux" "x86-64|x86_64|64-bit|ELF32|32-bit|class" "${pre[@]}" "$work/vmlinux.i386"
  bad "$cmd: directory as vmlinux" "not a regular file|directory" "${pre[@]}" "$work"
done

# ---- probes ----
bad "capture: unknown probe" "is not a station" capture --probes nosuch_function --gdb "$nogdb" --vmlinux "$K"
bad "capture: a kernel function that is not a station" "'do_exit' is not a station" capture --probes do_exit --gdb "$nogdb" --vmlinux "$K"
bad "run: empty probe in the list" "is not a station|--probes" run --probes handle_mm_fault,,bogus

# ---- malformed --gdb addresses (no DNS: host names are localhost) ----
bad "--gdb localhost: (no port)" "localhost:" capture --gdb localhost: --vmlinux "$K"
bad "--gdb :1 (no host)" '":1"|:1' capture --gdb :1 --vmlinux "$K"
bad "--gdb unix: (no path)" "unix:" capture --gdb unix: --vmlinux "$K"
bad "--gdb unix: path longer than a sockaddr_un" "too long" capture --gdb "unix:/tmp/$(printf 'a%.0s' {1..200})" --vmlinux "$K"
# A port out of range must be refused as such, not wrapped modulo 65536
# (99999 would connect to port 34463) or tried as port 0.
bad "--gdb localhost:99999 (port out of range)" "port" capture --gdb localhost:99999 --vmlinux "$K"
bad "--gdb localhost:0 (port 0)" "port" capture --gdb localhost:0 --vmlinux "$K"
bad "--gdb localhost:12ab (port not a number)" "port|localhost:12ab" capture --gdb localhost:12ab --vmlinux "$K"

# ---- output paths that cannot be written ----
bad "run: -o a directory" "cannot write the report to $work" run -o "$work"
bad "capture: -o a directory" "cannot write the report to $work" capture -o "$work" --gdb "$nogdb" --vmlinux "$K"
bad "capture: -o in a missing directory" "cannot write the report" capture -o "$work/missing/r.json" --gdb "$nogdb" --vmlinux "$K"
# A report that cannot be written out (/dev/full: every write is ENOSPC) must
# not end in exit status 0 with the report silently lost. Guards the
# ferror/fclose check on the report stream. This one boots the VM.
rc=0; timeout 120 "$FAULTLINE_BIN" run -o /dev/full >"$work/out" 2>"$work/err" || rc=$?
expect "run -o /dev/full: exit status" "$rc" 2
expect "run -o /dev/full: one line on stderr" "$(wc -l <"$work/err")" 1
expect_true "run -o /dev/full: says the report could not be written ($(head -c 300 "$work/err"))" \
  grep -qE "cannot write the report to /dev/full|/dev/full.*(No space|ENOSPC)" "$work/err"

# ---- an output that is one of the inputs (issue 16, item 2) ----
# Refused before anything is read or written: the input keeps every byte.
# Guards cmd_output.c's refuse_input (path, symbolic link and hard link).
cp "$FAULTLINE_INITRD" "$work/in.img"; ln -s in.img "$work/in.link"; ln "$work/in.img" "$work/in.hard"
printf 'not a kernel\n' >"$work/in.vmlinux"
sum_in=$(md5sum <"$work/in.img")
bad "run: -o the --initrd" "same file as --initrd" run --initrd "$work/in.img" -o "$work/in.img"
bad "run: -o a symbolic link to the --initrd" "same file as --initrd" run --initrd "$work/in.img" -o "$work/in.link"
bad "run: -o a hard link to the --initrd" "same file as --initrd" run --initrd "$work/in.img" -o "$work/in.hard"
bad "run: -o the --kernel" "same file as --kernel" run --kernel "$work/in.vmlinux" -o "$work/in.vmlinux"
bad "capture: -o the --vmlinux" "same file as --vmlinux" capture --gdb "$nogdb" --vmlinux "$work/in.vmlinux" -o "$work/in.vmlinux"
expect "the --initrd kept every byte" "$(md5sum <"$work/in.img")" "$sum_in"
expect "the --vmlinux kept every byte" "$(cat "$work/in.vmlinux")" "not a kernel"
expect_true "-o through a link left the link a link" test -L "$work/in.link"
# A run that fails at once leaves an existing report as it was (the report
# goes to a temporary file renamed over it only when the run succeeded).
printf 'the old report\n' >"$work/old-report.txt"
bad "run: a failing run with -o an existing report" "vmlinux.empty" run --kernel "$work/vmlinux.empty" -o "$work/old-report.txt"
expect "a failed run left the existing report as it was" "$(cat "$work/old-report.txt")" "the old report"
expect "a failed run left no temporary file beside it" "$(ls -A "$work" | grep -c '\.faultline-' || true)" 0
bad "run: --probes with no station" "at least one station" run --probes ""

# ---- a QEMU that never opens its gdbstub (issue 16, item 9) ----
# --timeout bounds the start-up too: with --timeout 3 the run ends in about
# 3 s (it took the fixed 10 s of vm.c's socket wait, plus the connect's).
# Guards cmd_guest.c's start-up budget.
mkdir -p "$work/hang-bin"
cat >"$work/hang-bin/qemu-system-x86_64" <<'SH'
#!/bin/sh
[ "$1" = --version ] && { echo "QEMU emulator version 7.2.0 (a stand-in that hangs)"; exit 0; }
exec sleep 60
SH
chmod +x "$work/hang-bin/qemu-system-x86_64"
rc=0; s=$(date +%s.%N)
PATH=$work/hang-bin:$PATH timeout 30 "$FAULTLINE_BIN" run --timeout 3 -o "$work/hang.txt" >/dev/null 2>"$work/err" || rc=$?
el=$(echo "$(date +%s.%N) - $s" | bc)
expect "a QEMU that hangs at start: exit status" "$rc" 2
expect "a QEMU that hangs at start: one line on stderr" "$(wc -l <"$work/err")" 1
expect_true "a QEMU that hangs at start: --timeout 3 bounds it ($el s: $(cat "$work/err"))" [ "$(echo "$el < 6" | bc)" = 1 ]

# ---- numbers out of range ----
bad "run: --timeout 0" "--timeout" run --timeout 0
bad "run: --timeout 99999" "--timeout" run --timeout 99999
# --count 0 is "every fault until the timeout" (issue 13); negative and
# non-numbers stay errors, and there is no upper bound.
bad "capture: --count -1" "--count needs" capture --count -1 --gdb "$nogdb" --vmlinux "$K"
bad "capture: --count abc" "--count needs" capture --count abc --gdb "$nogdb" --vmlinux "$K"
bad "capture: --count 5000 is accepted (fails on the connect)" "connect" capture --count 5000 --gdb "$nogdb" --vmlinux "$K"
bad "capture: --addr 0" "--addr" capture --addr 0 --gdb "$nogdb" --vmlinux "$K"
bad "capture: --comm longer than 15" "--comm" capture --comm abcdefghijklmnopq --gdb "$nogdb" --vmlinux "$K"
bad "run: missing initrd" "/nonexistent/initrd" run --initrd /nonexistent/initrd
expect_true "the output file of a failed run was not created" test ! -e "$work/missing"
finish
