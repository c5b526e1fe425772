#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Certificate signing throughput: Portcullis in-process vs. one `ssh-keygen -s` process per cert.
# Usage: bench/run.sh BUILD_DIR [N] [M]
#   N  certificates signed in-process by bench/bench_cert_sign (default 20000)
#   M  ssh-keygen -s runs (default 200)
# ssh-keygen pays fork+exec, dynamic linking, key file reads and a file write per certificate;
# that per-process overhead is what the ratio mostly measures, so a baseline of M bare
# `ssh-keygen -l` runs (same process cost, no signing) is printed too.
# Then bench/bench_wipefree: malloc/free with and without wipe on free (lib/pc_wipefree.c).
set -eu

build=${1:?usage: $0 BUILD_DIR [N] [M]}
n=${2:-20000}
m=${3:-200}
bin="$build/bench/bench_cert_sign"
if [ ! -x "$bin" ]; then
    make -C "$build" bench/bench_cert_sign >/dev/null
fi

tmp=$(mktemp -d /tmp/pc-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

ours=$("$bin" "$n")
ours_rate=$(printf '%s\n' "$ours" | sed -n 's/.*certs_per_sec=\([0-9.]*\).*/\1/p')
echo "$ours"

ssh-keygen -q -t ed25519 -N '' -C ca -f "$tmp/ca"
ssh-keygen -q -t ed25519 -N '' -C user -f "$tmp/user"

t0=$(now)
i=0
while [ "$i" -lt "$m" ]; do
    i=$((i + 1))
    ssh-keygen -q -s "$tmp/ca" -I id -n p -z "$i" -V +1h "$tmp/user.pub" 2>/dev/null
done
t1=$(now)
kg_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
kg_rate=$(rate "$m" "$kg_s")
echo "ssh_keygen_sign m=$m seconds=$kg_s certs_per_sec=$kg_rate"

t0=$(now)
i=0
while [ "$i" -lt "$m" ]; do
    i=$((i + 1))
    ssh-keygen -l -f "$tmp/user.pub" >/dev/null
done
t1=$(now)
base_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
echo "ssh_keygen_process_baseline m=$m seconds=$base_s runs_per_sec=$(rate "$m" "$base_s")" \
     "(ssh-keygen -l: process start-up without signing)"

awk -v a="$ours_rate" -v b="$kg_rate" \
    'BEGIN { printf "ratio portcullis/ssh-keygen = %.1fx\n", a / b }'

wf="$build/bench/bench_wipefree"
if [ ! -x "$wf" ]; then
    make -C "$build" bench/bench_wipefree >/dev/null
fi
"$wf"
