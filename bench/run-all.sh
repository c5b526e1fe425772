#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The benchmark suite of issue 16: every measure of docs/PERFORMANCE.md beside its anchor, in
# one run on loopback, then one table of ratios (bench/bench.py does the work).
# Usage: bench/run-all.sh BUILD_DIR [--quick]
#   --quick  small counts (about a minute): scripts/test.sh runs it so the suite never rots
# Bounded: about 5 minutes in full, the PostgreSQL rows (a throwaway cluster, fsync on; SKIP
# without PostgreSQL) included. Needs root only for the PAM row's reference modules' files
# (it writes nothing outside its temporary directory). Prints PASS/FAIL/SKIP lines per measure
# and "N passed, N failed, N skipped": a row passes when it was measured, whatever the speed.
set -eu
build=${1:?usage: $0 BUILD_DIR [--quick]}
shift
src=$(cd "$(dirname "$0")/.." && pwd)
make -s -C "$build" agent/portcullis-principals bench/bench_load bench/bench_pam >/dev/null
exec /usr/bin/python3 "$src/bench/bench.py" "$build" "$@"
