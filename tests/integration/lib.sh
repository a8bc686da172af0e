# Shared helpers for the integration scripts: run faultline, read its JSON Lines.
set -euo pipefail
: "${FAULTLINE_BIN:?run through tests/run.sh or set FAULTLINE_BIN}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fails=0 passes=0
# value FILE STATION-FUNCTION NAME -> the live value (hex string)
value() { jq -r --arg f "$2" --arg n "$3" 'select(.type=="probe" and .function==$f) | .values[$n].value // "missing"' "$1"; }
hit() { jq -r --arg f "$2" 'select(.type=="probe" and .function==$f) | .hit' "$1"; }
expect() { # expect DESCRIPTION ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $1: got '$2', expected '$3'" >&2; fi
}
expect_true() { # expect_true DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $d" >&2; fi
}
hex() { printf '0x%x' "$(( $1 ))"; }
finish() { echo "$(basename "$0" .sh): $passes passed, $fails failed"; [ "$fails" -eq 0 ]; }
# The kernel cuts a process name to 15 characters: "qemu-system-x86".
no_qemu_left() { ! pgrep -x qemu-system-x86 >/dev/null; }
# Precise where other QEMUs may run beside us: the run's JSON names its
# private socket directory; no QEMU may still be running with it.
no_qemu_of() { # no_qemu_of JSON-FILE
  local dir; dir=$(jq -r 'select(.type=="vm") | .gdb' "$1" | sed 's|^unix:||; s|/gdb.sock$||')
  [ -n "$dir" ] && [ "$dir" != null ] && ! pgrep -f -- "$dir" >/dev/null && [ ! -e "$dir" ]
}

# ---- faultline in the background, under faults (test_signals, test_real_faults, test_security) ----
mk_cpio() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --owner=0:0) >"$2"; }
# overlay NAME INIT-TEXT -> $work/NAME.img: the bundled initramfs, /init replaced
overlay() {
  local d=$work/$1.d size; mkdir -p "$d"; printf '%s\n' "$2" >"$d/init"; chmod 755 "$d/init"
  mk_cpio "$d" "$work/$1.cpio"; cp "$FAULTLINE_INITRD" "$work/$1.img"
  size=$(stat -c %s "$work/$1.img"); head -c $(( (512 - size % 512) % 512 )) /dev/zero >>"$work/$1.img"
  cat "$work/$1.cpio" >>"$work/$1.img"
}
alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
now() { date +%s.%N; }
secs_since() { echo "$(now) - $1" | bc; }
# start_fl OUT ERR ARGS...: faultline in the background -> fpid, t_start
start_fl() { local o=$1 e=$2; shift 2; t_start=$(now); "$FAULTLINE_BIN" "$@" >"$o" 2>"$e" & fpid=$!; }
# wait_exit SECS -> rc (exit status, or "hung" if it had to be killed), elapsed
wait_exit() {
  local n=$(( $1 * 10 ))
  while alive "$fpid" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
  if alive "$fpid"; then kill -9 "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null || true; rc=hung
  else rc=0; wait "$fpid" || rc=$?; fi
  elapsed=$(secs_since "$t_start")
}
# wait_qemu SECS -> qpid (QEMU, a child of faultline) and qdir (its private dir)
wait_qemu() {
  local n=$(( $1 * 10 )); qpid= qdir=
  while [ $n -gt 0 ] && alive "$fpid"; do
    qpid=$(pgrep -P "$fpid" -x qemu-system-x86 | head -1 || true)
    if [ -n "$qpid" ]; then
      qdir=$(tr '\0' '\n' <"/proc/$qpid/cmdline" 2>/dev/null | sed -n 's|^unix:\(/tmp/faultline-[^/]*\)/gdb.sock.*|\1|p' | head -1)
      [ -n "$qdir" ] && return 0
    fi
    sleep 0.1; n=$((n - 1))
  done
  return 1
}
# gone: this run's QEMU is not running any more and its directory is removed
gone() {
  local n=30
  while [ -n "$qpid" ] && alive "$qpid" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
  { [ -z "$qpid" ] || ! alive "$qpid"; } && { [ -z "$qdir" ] || [ ! -e "$qdir" ]; }
}
lt() { [ "$(echo "$1 < $2" | bc)" = 1 ]; }
one_line() { [ "$(wc -l <"$1")" -eq 1 ]; }
