#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Tests of portcullis-agent doctor: one case per broken setup it detects, each in a private
# mount namespace over /etc/ssh and /etc/pam.d (needs root; never writes the real files), with
# a real sshd -T, agent and portcullisd. Run under the system-tests lock:
#   flock /tmp/pc-system-tests.lock env PC_BUILD_DIR=BUILD tests/doctor/run.sh [CASE-FILTER...]
# One "PASS name" / "FAIL name: why" line per case, then "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/run_doctor.py" "$@"
