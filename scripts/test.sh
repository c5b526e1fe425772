#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# The README's test command: installs what is needed, checks that every program the scripts and
# tests run comes from that list (scripts/check-deps.py), builds twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), runs every test against both builds, the
# integration tests against a ThreadSanitizer build (scripts/test-tsan.sh), runs the
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
results=$(mktemp)
# suite LABEL COMMAND...: runs a suite that prints "PASS/FAIL …" lines and "N passed, N failed";
# its lines are shown with the label, its counts go to the total.
suite() {
  local label=$1 out line
  shift
  out=$(mktemp)
  "$@" </dev/null >"$out" 2>&1 || true     # a failure is counted from its result line
  grep -vE '^[0-9]+ passed, [0-9]+ failed' "$out" | sed "s/^/[$label] /" || true
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  [ -n "$line" ] || { echo "[$label] FAIL $*: no result line"; line="0 passed, 1 failed"; }
  echo "$line" | sed -E 's/^([0-9]+ passed, [0-9]+ failed)$/\1, 0 skipped/; s/^/'"$label"': /' |
    tee -a "$results"
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
     make -s -j"$jobs" >/dev/null && make -s -j"$jobs" check >/dev/null) ||
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
phase "demo (tests/demo/check.sh: scripts/demo.sh, its login, demo.sh stop)"
suite demo tests/demo/check.sh
phase "tests (packages)"
wait "$pkg_pid"
suite packages packaging/test-packages.sh test "$pkg"
p=0 f=0 s=0
while read -r line; do
  # shellcheck disable=SC2046  # three numbers, split on purpose
  set -- $(echo "$line" | sed -E 's/^[a-z-]+: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')
  p=$((p + $1)) f=$((f + $2)) s=$((s + $3))
done < <(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$results")
rm -f "$results"
phase "done"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
