# SPDX-License-Identifier: BSD-2-Clause
# Sourced by the package check scripts (test-deb.sh, test-rpm.sh, test-packages.sh): counting
# and the check helpers, so every script prints the same "PASS name" / "FAIL name" lines (a
# failure's output indented under it) and ends with "N passed, N failed". Set CHECKS_NAME first
# (message prefix).
# shellcheck shell=sh
PASS=0 FAIL=0 SKIP=0

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
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        bad "$2: produced no result line"
        return
    fi
    # shellcheck disable=SC2046
    set -- $(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
    PASS=$((PASS + $1)) FAIL=$((FAIL + $2)) SKIP=$((SKIP + ${3:-0}))
}
finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    [ "$FAIL" = 0 ]
}
