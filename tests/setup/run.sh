#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# End to end test of the installer (issue 5): `portcullis host token` → curl /v1/setup.sh | bash
# → sshd + PAM configured → a certificate + TOTP login → unconfigure restores every file.
# Runs in a private mount namespace (needs root; never writes the real /etc, /run or /usr/local).
#   PC_BUILD_DIR=BUILD tests/setup/run.sh
# One "PASS name" / "FAIL name" line per test, then "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/run_setup.py" "$@"
