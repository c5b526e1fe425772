#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# pam_portcullis.so under the real sudo (needs root): see tests/sudo/run_sudo.py.
#   PC_BUILD_DIR=BUILD tests/sudo/run.sh
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/run_sudo.py" "$@"
