#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# The README's first command, end to end, as CI runs it: scripts/demo.sh from this checkout
# (its own dependency install and build into build/demo), the real key + TOTP login it prints,
# then `scripts/demo.sh stop`, after which no process, user, PAM file or state of the demo may
# remain. Run once by scripts/test.sh (not per build: the demo builds for itself). Needs root.
# Output: "PASS name" / "FAIL name: why" lines, then "N passed, N failed".
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
state=$(mktemp -d /var/tmp/pc-demo-check.XXXXXX)
rmdir "$state"          # demo.sh creates it (and `stop` must remove it)
log=$(mktemp)
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# check NAME WHY-IF-NOT COMMAND...: PASS when COMMAND succeeds
check() {
  local name=$1 why=$2
  shift 2
  if "$@"; then pass "$name"; else fail "$name" "$why"; fi
}
absent() { [ ! -e "$1" ]; }
no_user() { ! getent passwd "$1" >/dev/null; }

# What belongs to the demo: its processes run from build/demo or the demo's sshd symlink.
demo_procs() {
  local pid cmd
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    cmd=$( { tr "\0" " " <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
    case $cmd in
      *"$src/build/demo/"*|*portcullis-demo-sshd*|*"$state"*) echo "$pid $cmd" ;;
    esac
  done
}

if getent passwd demo >/dev/null; then
  fail demo-preconditions "a user 'demo' exists before the demo; the check could not tell its removal"
fi

if PC_DEMO_STATE=$state timeout 900 "$src/scripts/demo.sh" </dev/null >"$log" 2>&1; then
  rc=0
else
  rc=$?
fi
if [ "$rc" -eq 0 ] && grep -q -- "-> logged in with key + code; 'id' ran as demo." "$log" &&
   grep -q 'uid=[0-9]*(demo)' "$log"; then
  pass demo-login
else
  fail demo-login "scripts/demo.sh exited $rc without the successful login; its last lines:"
  tail -n 40 "$log" | sed 's/^/    /'
fi
check demo-prints-enrollment "no otpauth:// URI in the demo's output" \
  grep -q 'otpauth://totp/' "$log"

PC_DEMO_STATE=$state "$src/scripts/demo.sh" stop </dev/null >>"$log" 2>&1 ||
  fail demo-stop "scripts/demo.sh stop exited non-zero"
sleep 1
left=$(demo_procs)
check stop-leaves-no-process "still running: $left" test -z "$left"
check stop-removes-user "user demo still exists" no_user demo
check stop-removes-home "/home/demo still exists" absent /home/demo
check stop-removes-pam-file "/etc/pam.d/portcullis-demo-sshd still exists" \
  absent /etc/pam.d/portcullis-demo-sshd
check stop-removes-run-dir "/usr/local/lib/portcullis-demo still exists" \
  absent /usr/local/lib/portcullis-demo
check stop-removes-state "$state still exists" absent "$state"

rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
