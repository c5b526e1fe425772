#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The integration tests (tests/integration) with PostgreSQL as the store: one throwaway cluster
# for the run (tests/lib/pgserver.py: initdb + pg_ctl as the user postgres, a private unix
# socket, no TCP), a fresh database per daemon's data dir. Needs Debian's postgresql package.
#   PC_BUILD_DIR=BUILD tests/integration-pg/run.sh [FILTER...]
# One "PASS name" / "FAIL name" / "SKIP name: why" line per test, then "N passed, N failed[, N
# skipped]". Without PostgreSQL installed every test is reported as one SKIP.
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c "import sys; sys.path.insert(0, '$src/tests/lib'); import pgserver; pgserver.bin_dir()" 2>/dev/null; then
    echo "SKIP integration-pg: PostgreSQL is not installed (/usr/lib/postgresql/*/bin; apt-get install postgresql)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
PC_TEST_STORE=postgresql exec /usr/bin/python3 "$src/tests/integration/run.py" "$@"
