# SPDX-License-Identifier: BSD-2-Clause
# Sourced by the package check scripts (test-deb.sh, test-rpm.sh, test-packages.sh): counting
# and the check helpers, so every script prints the same "PASS name" / "FAIL name" lines (a
# failure's output indented under it) and ends with "N passed, N failed". Set CHECKS_NAME first
# (message prefix). The result lines are read by tests/lib/results.sh (found from $0: every
# caller is in packaging/).
# shellcheck shell=sh
PASS=0 FAIL=0 SKIP=0
. "$(dirname "$0")/../tests/lib/results.sh"

say() { printf '%s: %s\n' "$CHECKS_NAME" "$*"; }
die() { printf '%s: error: %s\n' "$CHECKS_NAME" "$*" >&2; exit 2; }
ok() { PASS=$((PASS + 1)); printf 'PASS %s\n' "$1"; }
bad() { # bad NAME [DETAIL...]: detail lines are printed indented under the FAIL line
    FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$1"; shift
    for d in "$@"; do printf '%s\n' "$d" | sed 's/^/    /'; done
}
check() { # check NAME COMMAND...: PASS when COMMAND succeeds, else FAIL with its output
    name=$1; shift
    if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
check_not() { # check_not NAME COMMAND...: PASS when COMMAND fails
    name=$1; shift
    if out=$("$@" 2>&1); then bad "$name" "$out"; else ok "$name"; fi
}
add_counts() { # add_counts FILE NAME: adds FILE's last "N passed, N failed[, N skipped]" line
    if ! results_read "$1"; then
        bad "$2: produced no result line"
        return
    fi
    PASS=$((PASS + R_PASSED)) FAIL=$((FAIL + R_FAILED)) SKIP=$((SKIP + R_SKIPPED))
}
finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    [ "$FAIL" = 0 ]
}
