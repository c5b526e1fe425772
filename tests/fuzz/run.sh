#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs the libFuzzer targets built by tests/fuzz/build.sh.
#   tests/fuzz/run.sh OUTDIR SECONDS [TARGET...]     (TARGET: cert, sshsig, …; default all)
# Each target first runs every input of its committed corpus (tests/fuzz/corpus/TARGET, the
# seeds and the regression inputs of crashes found before), then fuzzes for SECONDS
# (-max_total_time) on a copy of that corpus, so nothing is written into the repository.
# -timeout=10 (one input), -rss_limit_mb=2048, leak detection on. FUZZ_JOBS targets run at
# once (default: the number of cores); each still gets its own SECONDS.
# Prints "PASS TARGET (N execs)" or "FAIL TARGET: crash|leak|timeout|oom, artifact at PATH"
# (the input that failed, kept under OUTDIR/artifacts/ with the log beside it), and
# "N passed, N failed" last. Exits non-zero if any target failed.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OUTDIR SECONDS [TARGET...]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(cd "$1" && pwd) || exit 2
secs=$2
shift 2
if [ $# -eq 0 ]; then
  set --
  for c in "$src"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$c" .c)
    set -- "$@" "${t#fuzz_}"
  done
fi
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
work=$(mktemp -d "${TMPDIR:-/tmp}/pc-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# one TARGET: writes its result line to $work/TARGET.result
one() {
  local t=$1 bin="$out/fuzz_$1" corpus="$work/corpus-$1" log="$work/$1.log" art rc execs kind
  art="$out/artifacts/$t"
  if [ ! -x "$bin" ]; then
    echo "FAIL $t: no binary $bin (run tests/fuzz/build.sh $out)" >"$work/$t.result"
    return
  fi
  rm -rf "$art" "$corpus"
  mkdir -p "$art" "$corpus"
  [ -d "$src/tests/fuzz/corpus/$t" ] && cp -r "$src/tests/fuzz/corpus/$t/." "$corpus/"
  # libFuzzer stops itself after SECONDS; the outer timeout is only a guard against a hang
  # outside any one input (-timeout covers those).
  timeout -k 10 $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
  if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
    echo "PASS $t ($execs execs)" >"$work/$t.result"
    rm -rf "$art"
    return
  fi
  a=$(find "$art" -type f -name '*-*' | head -n 1)
  case $(basename "${a:-none}") in
    crash-*) kind=crash ;; leak-*) kind=leak ;; timeout-*) kind=timeout ;; oom-*) kind=oom ;;
    slow-unit-*) kind=slow ;; *) [ "$rc" -eq 124 ] && kind=hang || kind="exit $rc" ;;
  esac
  cp "$log" "$art/$t.log"
  {
    echo "FAIL $t: $kind, artifact at ${a:-none} (log: $art/$t.log)"
    grep -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$log" | head -n 25 | sed 's/^/    /'
  } >"$work/$t.result"
}

running=0
for t in "$@"; do
  one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
passed=0 failed=0
for t in "$@"; do
  cat "$work/$t.result"
  if grep -q '^PASS' "$work/$t.result"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
