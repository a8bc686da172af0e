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
