#!/usr/bin/env bash
# Every option faultline accepts is in its option table (as the binary lists
# it: `faultline --list-options CMD`), in its --help and in
# docs/man/faultline.1, and the other way round, per command; every command
# is in `faultline --help`, the table and the man page; the bash completion
# (which asks the binary) offers the same options.
#
# "Accepted" is asked of the program itself: each candidate option (from the
# help texts, the man page and the table's listing) is tried on each
# command, followed by a stray argument so that nothing runs, and counts as
# accepted unless the program calls it unknown or not for that command.
# --help (every command) and --version (top level) are documented once, not
# per command, and are left out of the comparison.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
man1="$top/docs/man/faultline.1"
completion="$top/scripts/faultline.bash-completion"

# Options in a text: --long and -s words (not "x86-64", "kernel-write", "--" alone).
opts_in() { grep -oE '(^|[^A-Za-z0-9_-])--?[a-z][a-z0-9-]*' | sed -E 's/^[^-]*//' | grep -vxE -- '--help|--version' | sort -u || true; }

# Commands of `faultline --help`: the indented words of its "commands:" block.
help_commands() { { "$FAULTLINE_BIN" --help || true; } | awk '/^commands:/ {on=1; next} on && /^$/ {exit} on && /^  [a-z]/ {print $1}' | sort -u; }
# Commands of the man page: the tags of .SH COMMANDS.
man_commands() {
  awk '/^\.SH/ {on = ($2 == "COMMANDS")} on && prev == ".TP" {print $2} {prev = $1}' "$man1" | sort -u
}
# Options the man page documents for a command: the tags under ".SS CMD" of OPTIONS.
man_opts() {
  awk -v cmd="$1" '/^\.SH/ {sec = $2; sub_ = ""} /^\.SS/ {sub_ = $2}
    sec == "OPTIONS" && sub_ == cmd && prev == ".TP" {print} {prev = $1}' "$man1" | sed 's/\\-/-/g' | opts_in
}
help_opts() { { "$FAULTLINE_BIN" "$1" --help 2>&1 || true; } | opts_in; }
quiet() { "$@" >/dev/null 2>&1; }
# The option table's rows for a command, as the binary lists them.
table_opts() { "$FAULTLINE_BIN" --list-options "$1" | grep -vxE -- '--help|--version' | sort -u || true; }

# Is OPTION accepted by COMMAND? Guest files point nowhere, so even a probe
# that parses cleanly ends at once instead of booting anything.
rejected_re='unknown option|unrecognized option|does not apply|invalid option|not an option'
probe() { # probe ARGS...: faultline's stdout and stderr
  (cd "$work" && FAULTLINE_KERNEL=/nonexistent/vmlinux FAULTLINE_INITRD=/nonexistent/initrd \
     timeout 20 "$FAULTLINE_BIN" "$@" </dev/null 2>&1) || true
}
accepts() { # accepts CMD OPT: a long option with its value attached or not
  local cmd=$1 opt=$2        # (a flag refuses "=1"), a short one with a value
  if [[ $opt == --* ]]; then
    grep -qiE "$rejected_re" <<<"$(probe "$cmd" "$opt=1" stray-argument)" || return 0
    grep -qiE "$rejected_re" <<<"$(probe "$cmd" "$opt" stray-argument)" || return 0
  else
    grep -qiE "$rejected_re" <<<"$(probe "$cmd" "$opt" "$work/value" stray-argument)" || return 0
  fi
  return 1
}

# What the completion offers after "faultline CMD -".
completion_opts() {
  bash -c '. "$1"; COMP_WORDS=("$3" "$2" -); COMP_CWORD=2; COMPREPLY=(); _faultline; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$completion" "$1" "$FAULTLINE_BIN" | grep -E '^-' | grep -vxE -- '--help|--version|--' | sort -u || true
}

# in_set WORD LIST: is WORD a line of LIST?
in_set() { grep -qxF -- "$1" <<<"$2"; }
# both_ways CMD NAME-A LIST-A NAME-B LIST-B
both_ways() {
  local cmd=$1 na=$2 a=$3 nb=$4 b=$5 o
  for o in $a; do expect_true "$cmd: $o ($na) is missing from $nb" in_set "$o" "$b"; done
  for o in $b; do expect_true "$cmd: $o ($nb) is missing from $na" in_set "$o" "$a"; done
}

hc=$(help_commands)
mc=$(man_commands)
expect_true "faultline --help lists commands" test -n "$hc"
expect_true "the man page lists commands" test -n "$mc"
for c in run capture boot version; do
  expect_true "faultline --help lists $c" in_set "$c" "$hc"
done
both_ways "commands" "faultline --help" "$hc" "docs/man/faultline.1's COMMANDS" "$mc"
both_ways "commands" "faultline --help" "$hc" "faultline --list-commands" "$("$FAULTLINE_BIN" --list-commands | sort -u)"
expect_true "faultline --version works" quiet "$FAULTLINE_BIN" --version
expect_true "faultline version works" quiet "$FAULTLINE_BIN" version
expect_true "faultline --version names the QEMU and kernel it was tested with" \
  bash -c '"$1" --version | grep -q "QEMU" && "$1" --version | grep -qi "linux"' _ "$FAULTLINE_BIN"

for cmd in $(printf '%s\n' $hc $mc | sort -u); do
  [ "$cmd" = version ] && continue
  if ! quiet "$FAULTLINE_BIN" "$cmd" --help; then
    expect_true "faultline $cmd --help exits 0 (is $cmd a command?)" false
    continue
  fi
  h=$(help_opts "$cmd")
  m=$(man_opts "$cmd")
  t=$(table_opts "$cmd")
  expect_true "faultline $cmd --help names options" test -n "$h"
  accepted=""
  for o in $(printf '%s\n' $h $m $t | sort -u); do
    accepts "$cmd" "$o" && accepted+="$o"$'\n'
  done
  accepted=$(printf '%s' "$accepted" | sort -u)
  echo "$cmd: accepts $(echo $accepted)"
  both_ways "$cmd" "accepted" "$accepted" "the option table (faultline --list-options $cmd)" "$t"
  both_ways "$cmd" "accepted" "$accepted" "'faultline $cmd --help'" "$h"
  both_ways "$cmd" "accepted" "$accepted" "docs/man/faultline.1 ($cmd)" "$m"
  both_ways "$cmd" "accepted" "$accepted" "scripts/faultline.bash-completion" "$(completion_opts "$cmd")"
done

# The completion file defines its function and registers it, quietly.
expect_true "completion: sourcing it prints nothing and succeeds" \
  bash -c '[ -z "$(. "$1" 2>&1)" ]' _ "$completion"
expect "completion: complete -p faultline" \
  "$(bash -c '. "$1"; complete -p faultline' _ "$completion" 2>&1)" "complete -F _faultline faultline"
expect "completion: the --format values" \
  "$(bash -c '. "$1"; COMP_WORDS=("$2" run --format ""); COMP_CWORD=3; _faultline; echo "${COMPREPLY[*]}"' _ "$completion" "$FAULTLINE_BIN")" \
  "text md json"
expect "completion: stations after a comma" \
  "$(bash -c '. "$1"; COMP_WORDS=("$2" run --probes exc_page_fault,lock); COMP_CWORD=3; _faultline; echo "${COMPREPLY[*]}"' _ "$completion" "$FAULTLINE_BIN")" \
  "exc_page_fault,lock_vma_under_rcu"
finish
