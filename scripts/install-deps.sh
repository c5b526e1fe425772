#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The one list of Debian 12 packages Portcullis needs to build, test and demo.
# Used by the README's two commands and by CI. Needs root, except for --list.
#   scripts/install-deps.sh          install whatever of the list is missing
#   scripts/install-deps.sh --list   print the list, one package a line (scripts/check-deps.py reads it)
# Every program that scripts/, tests/, setup-scripts/ and packaging/ run must come from a package
# here (or one these depend on, or the base image): scripts/check-deps.py checks it in CI.
set -eu
# The line of shellcheck, cppcheck and clang-format is for scripts/lint.sh. The last two are for the
# packages: make deb, make rpm and packaging/test-*.sh (lintian, rpmlint; systemd-nspawn boots a
# container to run the units under systemd).
# clang, libclang-rt-14-dev (the libFuzzer and sanitizer runtimes) and llvm (llvm-symbolizer,
# for readable crash traces) build and run the fuzz targets: tests/fuzz/, make fuzz.
# prometheus: its promtool checks GET /metrics in tests/integration/test_metrics.py.
# wrk, hyperfine and the two reference PAM modules are for the benchmarks: make bench, bench/.
# libfido2-dev verifies the web app's passkeys, xxd compiles its files into portcullisd, and
# chromium (headless, with a virtual authenticator) drives tests/webapp/.
# python3-cryptography: tests/integration/test_webpush.py (its push receiver's test CA, RFC 8291
# decryption and the VAPID signature check on the receiving side).
# strace: tests/integration/test_durability.py counts the daemon's fsync calls (a begun login's
# commit skips the sync, a decision's does not).
# libpq-dev: portcullisd's PostgreSQL store (--store URL); postgresql: the throwaway clusters its
# tests start (tests/lib/pgserver.py, tests/integration/test_store_flags.py).
PKGS="build-essential autoconf automake libtool pkg-config
  libpam0g-dev libssl-dev libcurl4-openssl-dev libjson-c-dev liboath-dev
  libmicrohttpd-dev libgnutls28-dev libsqlite3-dev libqrencode-dev libcmocka-dev
  libpam-wrapper libpamtest0-dev
  openssh-server openssh-client expect oathtool sqlite3 curl openssl python3 procps iproute2 util-linux sudo git
  shellcheck cppcheck clang-format
  debhelper dh-autoreconf dpkg-dev fakeroot lintian systemd-container
  rpm rpmlint rpm2cpio cpio file
  clang libclang-rt-14-dev llvm
  prometheus
  wrk hyperfine libpam-google-authenticator libpam-oath
  libfido2-dev xxd chromium
  python3-cryptography
  postgresql libpq-dev
  strace"
if [ "${1:-}" = "--list" ]; then
  # shellcheck disable=SC2086
  printf '%s\n' $PKGS
  exit 0
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
