#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# ThreadSanitizer: builds portcullisd, the agent and the CLI with -fsanitize=thread into BUILD_DIR
# (default build/tsan; `make`, not `make check`: the unit tests are not threaded) and runs the
# integration tests (tests/integration/run.py: real daemons on loopback) against that build.
#   scripts/test-tsan.sh [BUILD_DIR]
# Any data race (or other TSan report) fails the run: halt_on_error=1 makes the process exit 66
# at the first report, and each process writes its reports to its own file (log_path), which this
# script prints and counts as a failure even when no test noticed the daemon's exit.
# Wipe on free (lib/pc_wipefree.c) is off in this build (--disable-wipe-free): TSan keeps its own
# malloc/free. setarch -R turns off address randomisation for the run, since TSan refuses high
# mmap entropy ("unexpected memory mapping") on newer kernels.
# Output: the test lines, "FAIL tsan: ..." per report file, then "N passed, N failed, N skipped".
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build/tsan}
jobs=$(nproc 2>/dev/null || echo 2)
san="-fsanitize=thread -fno-omit-frame-pointer"

mkdir -p "$build"
build=$(cd "$build" && pwd)
if [ ! -x "$src/configure" ]; then
  (cd "$src" && autoreconf -fi >/dev/null 2>&1)
fi
if ! (cd "$build" && "$src/configure" -q --enable-test-hooks --enable-werror --disable-wipe-free \
        CFLAGS="-O1 -g $san" LDFLAGS="$san" >/dev/null && make -s -j"$jobs" >/dev/null 2>&1); then
  echo "FAIL tsan build in $build:"
  (cd "$build" && make -j1 2>&1 | tail -40 | sed 's/^/    /')
  echo "0 passed, 1 failed"
  exit 1
fi

reports=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$reports" "$out"' EXIT
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 log_path=$reports/tsan" \
  PC_TEST_JOBS="${PC_TEST_JOBS:-2}" PC_BUILD_DIR="$build" setarch "$(uname -m)" -R /usr/bin/python3 "$src/tests/integration/run.py" \
  >"$out" 2>&1
grep -vE '^[0-9]+ passed, [0-9]+ failed' "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
if [ -z "$line" ]; then
  echo "FAIL tsan: tests/integration/run.py printed no result line"
  line="0 passed, 1 failed"
fi
p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
for r in "$reports"/tsan.*; do
  [ -e "$r" ] || continue
  echo "FAIL tsan: ThreadSanitizer report (pid ${r##*.}):"
  sed 's/^/    /' "$r" | head -n 80
  f=$((f + 1))
done
echo "$p passed, $f failed, ${s:-0} skipped"
[ "$f" -eq 0 ]
