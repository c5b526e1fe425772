#!/bin/bash
# The README's test command: installs what is needed, builds twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), runs every test against both builds, then
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
results=$(mktemp)
phase "tests (plain)"
tests/run-all.sh "$src/build/plain" plain | tee -a "$results"
phase "tests (sanitizers)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  tests/run-all.sh "$src/build/asan" asan | tee -a "$results"
phase "tests (packages)"
wait "$pkg_pid"
out=$(mktemp)
packaging/test-packages.sh test "$pkg" </dev/null >"$out" 2>&1
grep -vE '^[0-9]+ passed, [0-9]+ failed' "$out" | sed 's/^/[packages] /'
grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1 | sed 's/^/packages: /' | tee -a "$results"
grep -qE '^[0-9]+ passed, [0-9]+ failed' "$out" ||
  { echo "[packages] FAIL packaging/test-packages.sh: no result line"; echo "packages: 0 passed, 1 failed, 0 skipped" >>"$results"; }
rm -f "$out"
p=0 f=0 s=0
while read -r line; do
  set -- $(echo "$line" | sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')
  p=$((p + $1)) f=$((f + $2)) s=$((s + $3))
done < <(grep -E '^(plain|asan|packages): [0-9]+ passed' "$results")
rm -f "$results"
phase "done"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
