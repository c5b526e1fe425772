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
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c "import sys; sys.path.insert(0, '$src/tests/lib'); import pgserver; pgserver.bin_dir()" 2>/dev/null; then
    echo "SKIP webapp-pg: PostgreSQL is not installed (/usr/lib/postgresql/*/bin; apt-get install postgresql)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
PC_TEST_STORE=postgresql exec "$src/tests/webapp/run.sh" "$@"
