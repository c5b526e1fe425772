#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# The README's test command: installs what is needed, checks that every program the scripts and
# tests run comes from that list (scripts/check-deps.py), builds twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), runs every test against both builds, the
# integration tests against a ThreadSanitizer build (scripts/test-tsan.sh), fuzzes every parser
# of untrusted bytes for 30 s each (tests/fuzz/run.sh), the benchmarks once with small counts
# (bench/run-all.sh --quick: a row passes when it was measured, never on speed), runs the
# demo end to end (tests/demo/check.sh: scripts/demo.sh, its 2FA login, demo.sh stop), then
# the package tests (packaging/test-packages.sh: .deb and .rpm built from a dist tarball,
# installed in private namespaces and a systemd container — this machine is not changed).
# Needs root (packages; the end-to-end tests run a real sshd). Ends with "N passed, N failed, N skipped".
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
jobs=$(nproc 2>/dev/null || echo 2)

t0=$SECONDS
phase() { echo "== $* (at $(( (SECONDS - t0) / 60 ))m$(( (SECONDS - t0) % 60 ))s)"; }
phase "dependencies"
sh scripts/install-deps.sh
. tests/lib/results.sh
results=$(mktemp)
# suite LABEL COMMAND...: runs a suite that prints "PASS/FAIL …" lines and "N passed, N failed";
# its lines are shown with the label, its counts go to the total.
suite() {
  local label=$1 out
  shift
  out=$(mktemp)
  "$@" </dev/null >"$out" 2>&1 || true     # a failure is counted from its result line
  results_hide "$out" | sed "s/^/[$label] /" | tee -a "$results"
  results_read "$out" || { echo "[$label] FAIL $*: no result line" | tee -a "$results"; R_FAILED=1; }
  echo "$label: $R_PASSED passed, $R_FAILED failed, $R_SKIPPED skipped" | tee -a "$results"
  rm -f "$out"
}
phase "dependency check (scripts/check-deps.py)"
suite deps /usr/bin/python3 scripts/check-deps.py
suite deps-selftest /usr/bin/python3 tests/deps/test_check_deps.py
phase "lint (scripts/lint.sh: clang-format, cppcheck, shellcheck, SPDX lines)"
suite lint scripts/lint.sh
phase "autoreconf"
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }

build() { # dir, configure args...
  local dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && "$src/configure" -q --enable-test-hooks --enable-werror "$@" >/dev/null &&
     make -s -j"$jobs" >/dev/null && make -s -j"$jobs" check TESTS= >/dev/null) ||
     { echo "build in $dir failed"; (cd "$dir" && make -j1 2>&1 | tail -40); exit 1; }
}
phase "build (plain)"
build "$src/build/plain"
phase "build (sanitizers)"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
build "$src/build/asan" CFLAGS="-O1 -g $san" LDFLAGS="$san"

set +e
# The packages build from their own dist tarball; the suites below mostly wait (sshd, TOTP
# steps, timeouts), so the build runs beside them, at low priority, and is tested at the end.
pkg="$src/build/packages"
rm -rf "$pkg"
mkdir -p "$pkg"
phase "packages: building in the background (log: $pkg/build.log)"
nice -n 10 packaging/test-packages.sh build "$pkg" </dev/null >/dev/null 2>&1 &
pkg_pid=$!
phase "tests (plain)"
tests/run-all.sh "$src/build/plain" plain | tee -a "$results"
phase "tests (sanitizers)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  tests/run-all.sh "$src/build/asan" asan | tee -a "$results"
phase "ThreadSanitizer: build/tsan, integration tests (scripts/test-tsan.sh)"
suite tsan scripts/test-tsan.sh "$src/build/tsan"
phase "fuzz (tests/fuzz: each libFuzzer target 30 s on its corpus, $jobs at a time)"
# shellcheck disable=SC2016  # $1 is the inner shell's
suite fuzz bash -c 'tests/fuzz/build.sh "$1" >/dev/null && exec tests/fuzz/run.sh "$1" 30' _ \
  "$src/build/fuzz"
phase "bench (bench/run-all.sh --quick: every measure once, small counts; never fails on speed)"
suite bench bench/run-all.sh "$src/build/plain" --quick
phase "demo (tests/demo/check.sh: scripts/demo.sh, its login, demo.sh stop)"
suite demo tests/demo/check.sh
phase "tests (packages)"
wait "$pkg_pid"
suite packages packaging/test-packages.sh test "$pkg"
p=0 f=0 s=0
while read -r line; do   # "LABEL: N passed, N failed, N skipped", one per suite and build
  results_parse "${line#*: }" || continue
  p=$((p + R_PASSED)) f=$((f + R_FAILED)) s=$((s + R_SKIPPED))
done < <(grep -E '^[a-z-]+: ' "$results")
# A failure's line is far above the end of a long log: repeat them, so the tail names them.
if grep -qE '(^|\] )FAIL\b' "$results"; then
  phase "failed tests (repeated from above)"
  grep -E '(^|\] )FAIL\b' "$results" | cut -c1-300 | head -n 40
fi
rm -f "$results"
phase "done"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
