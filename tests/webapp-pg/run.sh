#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The approval web app tests (tests/webapp: headless Chromium, and as root a real sshd + ssh
# under expect) with PostgreSQL as the control plane's store: one throwaway cluster for the run
# (tests/lib/pgserver.py), a fresh database per portcullisd data dir (tests/integration/
# harness.py, PC_TEST_STORE). After every test run_webapp.py checks that each portcullisd
# started so far logged `event=started … store=postgresql` and left no portcullis.db
# (harness.store_problems), so a fallback to SQLite fails the run. Needs Debian's postgresql
# package; as root run it under the system-tests lock like tests/webapp:
#   flock /tmp/pc-system-tests.lock env PC_BUILD_DIR=BUILD tests/webapp-pg/run.sh [FILTER...]
# One "PASS name" / "FAIL name" / "SKIP name: why" line per test, then "N passed, N failed[, N
# skipped]". Without PostgreSQL installed the suite is reported as one SKIP.
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/../lib/pg-suite.sh"
pg_suite webapp-pg "$src/tests/webapp/run.sh" "$@"
