#!/usr/bin/env bash
# What --attribute kernel costs: the same run with and without the kernel's
# accept counters (filtered, inherited perf counters on the accept
# tracepoints, on every thread of the subject), alternating A B A B,
# reported as the ratio of median connection rates (with / without) and the
# spread of the per-pair ratios. Needs root (the counters).
#
# usage: scripts/bench-kattr.sh [PAIRS] [CONNECTIONS] [-- RUN_ARGS...]
#   defaults: 7 pairs of 60000 connections, reuseport, 4 workers, concurrency 64
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

bench_args "$@"

cargo build --release --quiet -p harness
bin=target/release/harness
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { "$bin" run "${args[@]}" --connections "$connections" --out "$tmp/r" "$@" > /dev/null 2>&1; summary_field "$tmp/r" conn_per_s; }

on=() off=() ratios=()
for ((i = 0; i < pairs; i++)); do
  a=$(run --attribute kernel)
  b=$(run)
  on+=("$a") off+=("$b")
  ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", a / b }')")
done
spread() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "min %s, max %s", a[1], a[NR] }'; }
echo "$(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); ${args[*]}, $connections connections, $pairs pairs"
echo "--attribute kernel: median $(printf '%s\n' "${on[@]}" | median) conn/s ($(spread "${on[@]}"))"
echo "without           : median $(printf '%s\n' "${off[@]}" | median) conn/s ($(spread "${off[@]}"))"
echo "per-pair ratio (with / without): median $(printf '%s\n' "${ratios[@]}" | median) ($(spread "${ratios[@]}"))"
