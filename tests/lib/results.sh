# SPDX-License-Identifier: BSD-2-Clause
# Sourced (sh or bash): the one reader of a suite's result line, "N passed, N failed" with an
# optional ", N skipped" — every suite ends with one (tests/*/run.sh, tests/integration/run.py,
# the package checks), and tests/run-all.sh, scripts/test.sh and packaging/checks.sh add them up.
# shellcheck shell=sh

# results_hide FILE: FILE without its result lines (the suite's own lines, to show)
results_hide() {
    grep -vE '^[0-9]+ passed, [0-9]+ failed' "$1" || true
}

# results_parse LINE: sets R_PASSED, R_FAILED, R_SKIPPED from LINE ("N passed, N failed" and an
# optional ", N skipped"; R_SKIPPED is 0 without it); fails, all three 0, if LINE is none
results_parse() {
    R_PASSED=0 R_FAILED=0 R_SKIPPED=0
    printf '%s\n' "$1" | grep -qE '^[0-9]+ passed, [0-9]+ failed' || return 1
    # shellcheck disable=SC2046  # three numbers, split on purpose
    set -- $(printf '%s\n' "$1" |
        sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
    # shellcheck disable=SC2034  # read by the caller
    R_PASSED=$1 R_FAILED=$2 R_SKIPPED=${3:-0}
}

# results_read FILE: results_parse of FILE's last result line; fails, all three 0, if it has none
results_read() {
    results_parse "$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)"
}
