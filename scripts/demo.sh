#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Portcullis in five minutes, on this machine, on loopback only. Needs root (Debian 12).
#
#   sudo scripts/demo.sh          install deps, build, start everything, show a real 2FA login
#   sudo scripts/demo.sh stop     stop everything the demo started and remove its files
#
# What runs: portcullisd (127.0.0.1, random port, data in $STATE/data), portcullis-agent
# (socket in /usr/local/lib/portcullis-demo/run/agent/), and a second, sandboxed sshd on
# 127.0.0.1:2222 (or the next free port) whose PAM service /etc/pam.d/portcullis-demo-sshd
# asks pam_portcullis.so for a second factor after the SSH key. The machine's own sshd and
# /etc/pam.d/sshd are not touched. A Unix user `demo` is created (and removed by `stop`).
# Works without a terminal (no stdin needed). PC_DEMO_STATE moves the state directory
# (default /var/tmp/portcullis-demo); PC_DEMO_BUILD=DIR uses an existing build instead of build/demo.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
state=${PC_DEMO_STATE:-/var/tmp/portcullis-demo}
build=$src/build/demo
pcenv=$src/tests/e2e/pcenv.py
cmd=${1:-start}

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root: sudo $0 $cmd"

case $cmd in
  stop)
    if [ -f "$pcenv" ] && command -v python3 >/dev/null 2>&1; then
      python3 "$pcenv" demo-down --state "$state"
    else
      die "cannot find $pcenv"
    fi
    exit 0 ;;
  start|"") ;;
  *) die "usage: $0 [start|stop]" ;;
esac

say "Installing build and demo dependencies (scripts/install-deps.sh)"
sh "$src/scripts/install-deps.sh"

if [ -n "${PC_DEMO_BUILD:-}" ]; then
  build=$(cd "$PC_DEMO_BUILD" && pwd)
  say "Using the existing build in $build (PC_DEMO_BUILD)"
else
  say "Building into build/demo"
  cd "$src"
  # shellcheck disable=SC3013  # -nt: dash's and bash's test both have it
  if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi
  fi
  mkdir -p "$build"
  cd "$build"
  if [ ! -f Makefile ]; then
    ../../configure >configure.log 2>&1 ||
      { tail -n 30 configure.log; die "configure failed (see $build/configure.log)"; }
  fi
  jobs=$(nproc 2>/dev/null || echo 2)
  make -j"$jobs" >make.log 2>&1 || { tail -n 40 make.log; die "make failed (see $build/make.log)"; }
  echo "built: portcullisd, portcullis, portcullis-agent, pam_portcullis.so in $build"
fi

say "Starting portcullisd, enrolling this host, starting the agent and a sandboxed sshd"
env_out=$(python3 "$pcenv" demo-up --build "$build" --state "$state" --port 2222) ||
  die "set-up failed (logs under $state and /usr/local/lib/portcullis-demo/run)"
eval "$env_out"
echo "control plane: $PC_URL (pin $PC_PIN)"
echo "agent socket:  $PC_AGENT_SOCKET"
echo "sshd:          127.0.0.1:$PC_SSH_PORT, PAM service $PC_PAM_FILE:"
sed 's/^/                 /' "$PC_PAM_FILE"

cli=$build/cli/portcullis
say "Enrolling TOTP for user '$PC_DEMO_USER' (scan the QR code with an authenticator app)"
uri=""
if [ -x "$cli" ] && out=$("$cli" --url "$PC_URL" --pin "$PC_PIN" --token-file "$PC_TOKEN_FILE" \
      totp enroll "$PC_DEMO_USER" --force 2>&1); then
  printf '%s\n' "$out"
  uri=$(printf '%s\n' "$out" | grep -o 'otpauth://[^[:space:]]*' | head -n 1)
else
  echo "(the portcullis CLI did not work here; using curl)"
  [ -n "${out:-}" ] && printf '%s\n' "$out" | sed 's/^/  cli: /'
  token=$(head -n 1 "$PC_TOKEN_FILE")
  reply=$(curl -fsS --insecure --pinnedpubkey "$PC_PIN" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"force":true}' "$PC_URL/v1/users/$PC_DEMO_USER/totp")
  uri=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uri"])')
  echo "$uri"
  command -v qrencode >/dev/null 2>&1 && qrencode -t UTF8 "$uri" || true
fi
[ -n "$uri" ] || die "no otpauth:// URI came back from the TOTP enrollment"
secret=$(printf '%s\n' "$uri" | sed -n 's/.*[?&]secret=\([A-Za-z2-7=]*\).*/\1/p')
[ -n "$secret" ] || die "no secret in the otpauth URI"
umask 077
printf '%s\n' "$secret" >"$state/demo.secret"
umask 022

say "A real login: ssh key + TOTP code (computed with oathtool), running 'id' on the server"
ssh_args="-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o PreferredAuthentications=publickey,keyboard-interactive -o IdentitiesOnly=yes
  -o NumberOfPasswordPrompts=1 -i $PC_SSH_KEY -p $PC_SSH_PORT"
echo "\$ ssh -p $PC_SSH_PORT -i $PC_SSH_KEY $PC_DEMO_USER@127.0.0.1 id"
# shellcheck disable=SC2086
if expect "$src/tests/e2e/login.exp" -timeout 60 -secret "$secret" -- \
     ssh $ssh_args "$PC_DEMO_USER@127.0.0.1" id </dev/null >"$state/login.out" 2>&1; then
  ok=1
else
  ok=0
fi
tr -d '\r' <"$state/login.out" | grep -v '^E2E-' | grep -v '^$' |
  sed 's/\(code: *\)$/\1****** (the current code, computed with oathtool and typed by expect)/'
if [ $ok -eq 1 ] && grep -q "uid=.*($PC_DEMO_USER)" "$state/login.out"; then
  echo "-> logged in with key + code; 'id' ran as $PC_DEMO_USER."
else
  {
    echo "-> the demo login did not succeed. Last lines of the logs:"
    for f in "$PC_SSHD_LOG" "$PC_AGENT_LOG" "$PC_DAEMON_LOG"; do
      echo "   $f:"
      tail -n 6 "$f" | sed 's/^/     /'
    done
    echo "   Everything is still running for a look; stop it with: sudo $0 stop"
  } >&2
  exit 1
fi

say "Try it yourself"
cat <<EOF
  ssh -p $PC_SSH_PORT -i $PC_SSH_KEY $PC_DEMO_USER@127.0.0.1
  Verification code: from your phone (scan the QR code above), or
      oathtool --totp -b \$(cat $state/demo.secret)
  (each code works once: if it was just used, wait for the next one, at most 30 s)

  Audit log:     $cli --url $PC_URL --pin '$PC_PIN' --token-file $PC_TOKEN_FILE audit
  Logs:          $PC_SSHD_LOG
                 $PC_AGENT_LOG
                 $PC_DAEMON_LOG
  Stop it all:   sudo $src/scripts/demo.sh stop
EOF
