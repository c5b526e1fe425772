# SPDX-License-Identifier: BSD-2-Clause
# Sourced (sh) by the suites on PostgreSQL (tests/integration-pg, tests/e2e-pg, tests/webapp-pg):
# each runs another suite with PostgreSQL as the control plane's store (PC_TEST_STORE=postgresql:
# tests/integration/harness.py starts one throwaway cluster for the run with tests/lib/
# pgserver.py and gives each portcullisd data dir a fresh database).
# shellcheck shell=sh

# pg_suite NAME COMMAND [ARG...]: COMMAND in place of this shell (exec) with
# PC_TEST_STORE=postgresql; without PostgreSQL installed (pgserver.bin_dir finds no
# /usr/lib/postgresql/*/bin), the suite NAME reported as one SKIP and its result line instead.
# For a tests/NAME/run.sh ($0): tests/lib is found beside its folder.
pg_suite() {
    pg_suite_name=$1
    shift
    pg_suite_lib=$(cd "$(dirname "$0")/../lib" && pwd)
    if ! /usr/bin/python3 -c "import sys; sys.path.insert(0, '$pg_suite_lib'); import pgserver; pgserver.bin_dir()" 2>/dev/null; then
        echo "SKIP $pg_suite_name: PostgreSQL is not installed (/usr/lib/postgresql/*/bin; apt-get install postgresql)"
        echo "0 passed, 0 failed, 1 skipped"
        exit 0
    fi
    PC_TEST_STORE=postgresql exec "$@"
}
