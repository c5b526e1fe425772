#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) into OUTDIR with clang and
# -fsanitize=fuzzer,address,undefined, apart from the gcc builds: lib/ is compiled here from
# its sources, with a config.h from a configure run with CC=clang in OUTDIR/cfg.
#   tests/fuzz/build.sh OUTDIR
# Output: OUTDIR/fuzz_<target> for each target. Needs clang and libclang-rt-14-dev.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
CC=${FUZZ_CC:-clang}

# config.h as the real build has it (same configure.ac), made by clang.
if [ ! -f "$out/cfg/config.h" ] || [ "$src/configure.ac" -nt "$out/cfg/config.h" ]; then
  [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi >/dev/null 2>&1)
  mkdir -p "$out/cfg"
  (cd "$out/cfg" && CC="$CC" "$src/configure" -q >/dev/null) ||
    { echo "fuzz build: configure (CC=$CC) failed, see $out/cfg/config.log" >&2; exit 1; }
fi

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
pkgs="libcrypto json-c liboath"
# shellcheck disable=SC2086  # $pkgs and pkg-config's output are lists, split on purpose
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wno-unused-parameter -Werror $san \
  -I$out/cfg -I$src/lib $(pkg-config --cflags $pkgs)"
# shellcheck disable=SC2086
libs="$(pkg-config --libs $pkgs) -lpthread"

# lib/: the sources of libpccore (everything but the HTTPS client and the free() interposer).
mkdir -p "$out/obj"
objs=""
for c in "$src"/lib/pc_*.c; do
  case $(basename "$c") in pc_http.c|pc_net.c|pc_tls_client.c|pc_wipefree.c) continue ;; esac
  o="$out/obj/$(basename "$c" .c).o"
  # shellcheck disable=SC2086
  $CC $cflags -fsanitize=fuzzer-no-link -c "$c" -o "$o"
  objs="$objs $o"
done
n=0
for t in "$src"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$t" .c)
  # shellcheck disable=SC2086
  $CC $cflags -fsanitize=fuzzer "$t" $objs $libs -o "$out/$name"
  n=$((n + 1))
done
echo "fuzz build: $n targets in $out"
