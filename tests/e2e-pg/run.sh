#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The end-to-end tests (tests/e2e: real sshd, PAM module, agent, ssh under expect) with
# PostgreSQL as the control plane's store: one throwaway cluster for the run
# (tests/lib/pgserver.py: initdb + pg_ctl as the user postgres, a private unix socket, no TCP), a
# fresh database per portcullisd data dir (tests/integration/harness.py, PC_TEST_STORE).
# After every test run_e2e.py checks that each portcullisd started so far logged
# `event=started … store=postgresql` and left no portcullis.db (harness.store_problems), so a
# fallback to SQLite fails the run. Needs root and Debian's postgresql package; run it under
# the system-tests lock like tests/e2e:
#   flock /tmp/pc-system-tests.lock env PC_BUILD_DIR=BUILD tests/e2e-pg/run.sh [FILTER...]
# One "PASS name" / "FAIL name" / "SKIP name: why" line per test, then "N passed, N failed[, N
# skipped]". Without PostgreSQL installed the suite is reported as one SKIP.
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/../lib/pg-suite.sh"
pg_suite e2e-pg "$src/tests/e2e/run.sh" "$@"
