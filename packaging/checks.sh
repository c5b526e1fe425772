# Sourced by the package check scripts (test-deb.sh, test-rpm.sh): counting and the check
# helpers, so every script prints the same "PASS name" / "FAIL name" lines (a failure's output
# indented under it) and ends with "N passed, N failed". Set CHECKS_NAME first (message prefix).
# shellcheck shell=sh
PASS=0 FAIL=0

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
finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    [ "$FAIL" = 0 ]
}
