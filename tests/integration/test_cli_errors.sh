#!/usr/bin/env bash
# Bad input: one clear sentence on stderr, exit status 2, nothing left running.
. "$(dirname "$0")/lib.sh"
bad() { # bad DESCRIPTION EXPECTED-SUBSTRING ARGS...
  local d=$1 want=$2; shift 2
  local rc=0
  timeout 60 "$FAULTLINE_BIN" "$@" >"$work/out" 2>"$work/err" || rc=$?
  expect "$d: exit status" "$rc" 2
  expect "$d: one line on stderr" "$(wc -l < "$work/err")" 1
  expect_true "$d: says '$want'" grep -q -- "$want" "$work/err"
}
bad "unknown command" "unknown command" frobnicate
bad "unknown option" "unknown option" run --frob
bad "bad scenario" "--scenario must be" run --scenario nope
bad "bad format" "--format must be" run --format xml
bad "option of another command" "does not apply" run --gdb unix:/x
bad "unknown probe" "is not a station" run --probes nosuch_function
bad "missing kernel" "does not exist" run --kernel /nonexistent/vmlinux
bad "capture without --gdb" "are both required" capture --vmlinux /x
bad "missing vmlinux" "/nonexistent" capture --gdb unix:/nonexistent/sock --vmlinux /nonexistent/vmlinux
bad "not an ELF vmlinux" "ELF" capture --gdb unix:/nonexistent/sock --vmlinux /etc/passwd
bad "malformed --gdb" "no-port-here" capture --gdb no-port-here --vmlinux "$FAULTLINE_KERNEL"
bad "nobody listening" "connect" capture --gdb unix:/nonexistent/sock --vmlinux "$FAULTLINE_KERNEL"
bad "bad pid" "--pid needs" capture --pid abc --gdb unix:/x --vmlinux /x
bad "unwritable output" "cannot write the report" run -o /nonexistent/dir/report.txt
bad "program that is not x86-64 ELF" "not an x86-64 ELF" run -- /etc/passwd
# Precise where other QEMUs may run beside us (other runs on the machine):
# none booting this tree's guest files may be left.
no_qemu_of_this_tree() {
  local p; for p in $(pgrep -x qemu-system-x86 || true); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$FAULTLINE_INITRD" && return 1
  done; return 0
}
expect_true "no QEMU left" no_qemu_of_this_tree
finish
