#!/usr/bin/env bash
# Security of the gdbstub while faultline runs (issue 7): whoever reaches the
# stub controls the guest kernel, so it must be reachable only through a unix
# socket inside a private directory: mode 0700, owned by us, the socket in it.
# QEMU must own no TCP or UDP socket at all (listening or not), on IPv4 or
# IPv6: its socket inodes (from /proc/PID/fd) must not appear in
# /proc/net/{tcp,tcp6,udp,udp6}. Guards vm.c's make_private_dir (the 0700
# check), the -gdb unix:...,server=on argument (a tcp::1234 default would
# fail here) and -nodefaults (no default network device). Also: stale
# directories of dead runs are cleaned (vm.c vm_clean_stale_tmpdirs).
. "$(dirname "$0")/lib.sh"

# Helpers (overlay, start_fl, wait_exit, wait_qemu, gone, ...) are in lib.sh.

overlay sleeper '#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
echo "FAULTLINE-INIT up 0"
while :; do sleep 1000; done'

# Issue 16: temp dirs of dead runs (SIGKILL leaves them) are removed by the
# next run: only ours (name, owner, a dead owner.pid). Planted here: a dead
# process's dir, a live process's, and (as root) another user's.
sleep 0 & deadpid=$!; wait "$deadpid"
stale=$(mktemp -d /tmp/faultline-XXXXXX); echo "$deadpid 1" >"$stale/owner.pid"; : >"$stale/qemu.err"
stale_prog=$(mktemp -d /tmp/faultline-program-XXXXXX); echo "$deadpid 1" >"$stale_prog/owner.pid"
live=$(mktemp -d /tmp/faultline-XXXXXX); echo "$$ $(awk '{print $22}' /proc/$$/stat)" >"$live/owner.pid"
others=
if [ "$(id -u)" = 0 ]; then
  others=$(mktemp -d /tmp/faultline-XXXXXX); echo "$deadpid 1" >"$others/owner.pid"; chown -R 65534:65534 "$others"
fi
start_fl "$work/out" "$work/err" run --initrd "$work/sleeper.img" --timeout 20
if wait_qemu 30; then
  sleep 1  # the gdbstub is connected and the guest runs
  sock=$(tr '\0' '\n' <"/proc/$qpid/cmdline" | sed -n 's|^unix:\([^,]*\),.*|\1|p' | head -1)
  gdbargs=$(tr '\0' '\n' <"/proc/$qpid/cmdline" | grep -A1 -x -- -gdb | tail -1)
  expect "the gdbstub is a unix socket inside the private directory" "$(dirname "$sock")" "$qdir"
  expect_true "the private directory's name is /tmp/faultline-XXXXXX" bash -c "[[ '$qdir' =~ ^/tmp/faultline-[A-Za-z0-9]{6}$ ]]"
  expect "the private directory's mode" "$(stat -c %a "$qdir")" 700
  expect "the private directory's owner" "$(stat -c %u "$qdir")" "$(id -u)"
  expect_true "the private directory is a real directory (not a symlink)" bash -c "[ -d '$qdir' ] && [ ! -L '$qdir' ]"
  expect_true "the gdb socket exists and is a socket" test -S "$sock"
  expect "the socket's owner" "$(stat -c %u "$sock")" "$(id -u)"
  expect_true "-gdb names no TCP address ($gdbargs)" bash -c "! grep -qiE 'tcp|:[0-9]+(,|$)' <<<'$gdbargs'"
  # Every socket QEMU holds, by inode.
  inodes=$(for fd in /proc/"$qpid"/fd/*; do readlink "$fd" 2>/dev/null; done | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u)
  expect_true "QEMU holds at least one socket (the gdbstub's)" test -n "$inodes"
  inet=
  for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
    [ -r "$f" ] || continue
    for ino in $inodes; do
      awk -v i="$ino" 'NR > 1 && $10 == i { found = 1 } END { exit !found }' "$f" && inet="$inet $f:$ino"
    done
  done
  expect "TCP/UDP sockets owned by QEMU" "${inet:-none}" none
  # The listening unix socket QEMU owns is the private one.
  listening=$(for ino in $inodes; do awk -v i="$ino" '$7 == i && $8 != "" { print $8 }' /proc/net/unix; done | sort -u)
  expect_true "QEMU's named unix sockets are all inside the private directory ($listening)" \
    bash -c "for p in $listening; do [ \"\$(dirname \"\$p\")\" = '$qdir' ] || exit 1; done"
  kill -TERM "$fpid"
else
  expect "QEMU started" "no" "yes"
fi
wait_exit 20
expect_true "after faultline: QEMU gone, private dir (and socket) removed" gone
expect_true "a dead run's /tmp/faultline-XXXXXX was removed" test ! -e "$stale"
expect_true "a dead run's /tmp/faultline-program-XXXXXX was removed" test ! -e "$stale_prog"
expect_true "a live process's directory was kept" test -d "$live"
[ -z "$others" ] || expect_true "another user's directory was kept" test -d "$others"
rm -rf "$live" ${others:+"$others"}
finish
