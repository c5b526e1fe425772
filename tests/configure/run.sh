#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Tests of portcullis-agent configure/unconfigure against a corpus of sshd and PAM layouts,
# each in a private mount namespace (needs root; never writes the real /etc/ssh or /etc/pam.d).
#   PC_BUILD_DIR=BUILD tests/configure/run.sh [CASE-FILTER...]
# The build must be configured with --enable-test-hooks (crash injection).
# One "PASS name" / "FAIL name: why" line per case, then "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/run_configure.py" "$@"
