#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The package tests (issue 6), as CI runs them from scripts/test.sh:
#
#   packaging/test-packages.sh build DIR   configure the source tree in DIR/tree, `make deb` and
#                                          `make rpm` into DIR/tree/dist (log: DIR/build.log);
#                                          scripts/test.sh runs this in the background while the
#                                          other suites run (they mostly wait on sshd and clocks)
#   packaging/test-packages.sh test DIR    check what `build` made:
#       packaging/test-deb.sh       lintian; dpkg -i, files, users, remove, purge (overlay namespace)
#       tests/setup/run_setup.py    with PC_PACKAGE_DIR: the server and CLI .debs installed,
#                                   `setup.sh --package portcullis-agent_*.deb`, a certificate +
#                                   TOTP login through the installed sshd/PAM files, dpkg -r refused
#                                   while unconfigure fails, then undoing configure byte for byte
#       packaging/test-systemd.sh   the .debs in a container booted by systemd-nspawn (from an
#                                   overlay of this machine's root): the units under a real systemd
#       packaging/test-rpm.sh       rpmbuild's packages: rpmlint, contents, scriptlets
#   packaging/test-packages.sh DIR         both
#
# Needs root (namespaces, dpkg); never changes this machine's /etc, /usr or /var.
# Output: one PASS/FAIL/SKIP line per check, then "N passed, N failed, N skipped".
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
CHECKS_NAME=test-packages
. "$SRC/packaging/checks.sh"

build() { # DIR
    mkdir -p "$1/tree" || return 1
    (
        set -e
        cd "$1/tree"
        [ -f Makefile ] || "$SRC/configure" -q
        rm -rf dist
        DEB_BUILD_OPTIONS="parallel=$(nproc 2>/dev/null || echo 2)" make -s deb
        make -s rpm
    ) >"$1/build.log" 2>&1
    rc=$?
    echo "$rc" >"$1/build.rc"
    return "$rc"
}

suite() { # NAME COMMAND...: runs one suite, shows its lines, counts its result
    name=$1; shift
    out=$(mktemp)
    "$@" >"$out" 2>&1
    results_hide "$out"
    add_counts "$out" "$name"
    rm -f "$out"
}

test_all() { # DIR
    dist=$1/tree/dist
    if [ "$(cat "$1/build.rc" 2>/dev/null)" != 0 ]; then
        echo "FAIL package build (make deb, make rpm): see below"
        tail -n 40 "$1/build.log" 2>/dev/null | sed 's/^/    /'
        echo "0 passed, 1 failed"
        return 1
    fi
    ok "package build (make deb, make rpm)"
    suite deb sh "$SRC/packaging/test-deb.sh" "$dist"
    suite setup-package env PC_PACKAGE_DIR="$dist" /usr/bin/python3 "$SRC/tests/setup/run_setup.py"
    suite systemd sh "$SRC/packaging/test-systemd.sh" "$dist"
    suite rpm sh "$SRC/packaging/test-rpm.sh" "$dist"
    echo "$PASS passed, $FAIL failed, $SKIP skipped"
    [ "$FAIL" = 0 ]
}

[ "$(id -u)" = 0 ] || die "run as root (namespaces, dpkg)"
case ${1:-} in
build) [ $# = 2 ] || die "usage: $0 build DIR"; build "$(realpath -m "$2")" ;;
test) [ $# = 2 ] || die "usage: $0 test DIR"; test_all "$(realpath -m "$2")" ;;
-h|--help) sed -n '2,19p' "$0" ;;
'') sed -n '2,19p' "$0" >&2; exit 2 ;;
*) [ $# = 1 ] || die "usage: $0 [build|test] DIR"
   d=$(realpath -m "$1"); build "$d"; test_all "$d" ;;
esac
