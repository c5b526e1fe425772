#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The integration tests (tests/integration) with PostgreSQL as the store: one throwaway cluster
# for the run (tests/lib/pgserver.py: initdb + pg_ctl as the user postgres, a private unix
# socket, no TCP), a fresh database per daemon's data dir. Needs Debian's postgresql package.
#   PC_BUILD_DIR=BUILD tests/integration-pg/run.sh [FILTER...]
# One "PASS name" / "FAIL name" / "SKIP name: why" line per test, then "N passed, N failed[, N
# skipped]". Without PostgreSQL installed every test is reported as one SKIP.
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/../lib/pg-suite.sh"
pg_suite integration-pg /usr/bin/python3 "$src/tests/integration/run.py" "$@"
