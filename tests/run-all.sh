#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs every test against one build directory and prints the counts.
# Usage: tests/run-all.sh BUILD_DIR LABEL
# Last line: "LABEL: N passed, N failed, N skipped" (the caller sums the labels).
set -u
build=$(cd "$1" && pwd)
label=$2
src=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0 skipped=0
. "$src/tests/lib/results.sh"

add_counts() { # add_counts FILE NAME: adds FILE's result line ("N passed, N failed[, N skipped]")
  if ! results_read "$1"; then
    echo "[$label] FAIL $2: produced no result line"; failed=$((failed + 1)); return
  fi
  passed=$((passed + R_PASSED)) failed=$((failed + R_FAILED)) skipped=$((skipped + R_SKIPPED))
}

out=$(mktemp)
# Unit tests: cmocka programs, run by `make check` (Makefile.am: TESTS, and the environment they
# get); each program's output is in its .log, automake's verdict in its .trs. Each test counts once.
rm -f "$build"/tests/unit/test_*.log "$build"/tests/unit/test_*.trs
t0=$SECONDS
make -C "$build" -j"$(nproc 2>/dev/null || echo 2)" check >"$out" 2>&1
echo "[$label] time unit: $((SECONDS - t0)) s"
for t in "$build"/tests/unit/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  name=$(basename "$t")
  if [ ! -f "$t.trs" ] || [ ! -f "$t.log" ]; then
    echo "[$label] FAIL unit $name: make check did not run it"
    [ -s "$out" ] && tail -n 30 "$out" | sed 's/^/    /' && : >"$out"   # make's output, once
    failed=$((failed + 1))
    continue
  fi
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$t.log" | sed -E 's/.*\] ([0-9]+) test.*/\1/' | tail -n 1)
  f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$t.log" | sed -E 's/.*\] ([0-9]+) test.*/\1/' | tail -n 1)
  k=$(grep -E '^\[  SKIPPED \] [0-9]+ test' "$t.log" | sed -E 's/.*\] ([0-9]+) test.*/\1/' | tail -n 1)
  p=${p:-0} f=${f:-0} k=${k:-0}
  # a crash (or any exit but 0 and 77, automake's SKIP) counts as a failure
  if [ "$f" -eq 0 ] && ! grep -qE '^:test-result: (PASS|SKIP)$' "$t.trs"; then f=1; fi
  if [ "$k" -gt 0 ]; then
    # a skipped test prints its reason on the line before its "[  SKIPPED ] name"
    echo "[$label] unit $name: $p passed, $f failed, $k skipped"
    awk '/^\[==========\] [0-9]+ test/ { exit }
         /^\[  SKIPPED \] [A-Za-z_0-9]+$/ {
           print "    SKIP " $4 ": " (prev ~ /^\[/ ? "(the test printed no reason)" : prev) }
         { prev = $0 }' "$t.log" | sed "s/^/[$label]/"
  else
    echo "[$label] unit $name: $p passed, $f failed"
  fi
  [ "$f" -gt 0 ] && sed 's/^/    /' "$t.log"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
done

# Integration tests: real daemons on loopback, two modules per core at a time (each module its
# own process, its own daemons and ports; most of a test is waiting: with one per core the CPUs
# were half idle). The modules that measure (ALONE = True) still run one by one at the end.
# tests/integration-pg (below) runs them again on PostgreSQL the same way, in the plain build.
export PC_TEST_JOBS="${PC_TEST_JOBS:-$((2 * $(nproc 2>/dev/null || echo 1)))}"
t0=$SECONDS
PC_BUILD_DIR="$build" /usr/bin/python3 "$src/tests/integration/run.py" >"$out" 2>&1
results_hide "$out" | sed "s/^/[$label] /"
add_counts "$out" integration
echo "[$label] time integration: $((SECONDS - t0)) s"   # where CI's minutes go

# Every other suite: tests/<name>/run.sh prints one line per test and "N passed, N failed".
for suite in "$src"/tests/*/run.sh; do
  [ -x "$suite" ] || continue
  # tests/fuzz builds its own clang targets and runs once, in its own phase of scripts/test.sh
  [ "$suite" = "$src/tests/fuzz/run.sh" ] && continue
  # The suites on PostgreSQL run once, against the plain build: under the sanitizers the same
  # tests run on SQLite, and the PostgreSQL code itself (cp_sql_pg.c, cp_notify.c, cp_secrets.c)
  # runs there through the integration tests that always use a cluster (test_store_flags with
  # the layer's unit tests, test_multi_instance); a second sanitizer pass would add a quarter of
  # an hour to CI, not coverage.
  case "$(basename "$(dirname "$suite")")" in
    integration-pg | e2e-pg | webapp-pg)
      if [ "$label" != plain ]; then
        echo "[$label] note: $(basename "$(dirname "$suite")") runs in the plain build only"
        continue
      fi ;;
  esac
  t0=$SECONDS
  PC_BUILD_DIR="$build" "$suite" >"$out" 2>&1
  results_hide "$out" | sed "s/^/[$label] /"
  add_counts "$out" "$(basename "$(dirname "$suite")")"
  echo "[$label] time $(basename "$(dirname "$suite")"): $((SECONDS - t0)) s"
done
rm -f "$out"
echo "$label: $passed passed, $failed failed, $skipped skipped"
