#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# End-to-end tests against a real sshd, PAM module, agent and control plane (needs root).
#   PC_BUILD_DIR=BUILD tests/e2e/run.sh [FILTER...]
# One line per test, then "N passed, N failed[, N skipped]". See tests/e2e/run_e2e.py.
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/run_e2e.py" "$@"
