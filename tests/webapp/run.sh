#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The approval web app in headless Chromium against a real portcullisd (and, as root, a real
# sshd + ssh under expect: run under flock /tmp/pc-system-tests.lock like tests/e2e).
#   PC_BUILD_DIR=BUILD tests/webapp/run.sh [FILTER...]
# One line per test, then "N passed, N failed[, N skipped]". See tests/webapp/run_webapp.py.
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/run_webapp.py" "$@"
