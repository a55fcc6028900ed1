#!/usr/bin/env bash
# What the kernel's account costs: the same run with its own network
# namespace, the kernel's counters and every listener's accept queue sampled
# every 10 ms (the default), against the host's namespace with the queues
# sampled only at the 100 ms interval (--netns host --queue-interval 100ms),
# alternating A B A B, reported as the ratio of median connection rates and
# the spread of the per-pair ratios. Needs root (else both run in the host's
# namespace, and it says so).
#
# usage: scripts/bench-kernel.sh [PAIRS] [CONNECTIONS]   (defaults: 7 pairs of 60000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

pairs=${1:-7}
connections=${2:-60000}
positive_ints "$pairs" "$connections"

cargo build --release --quiet -p harness
bin=target/release/harness
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { "$bin" run --model reuseport --workers 4 --concurrency 64 --connections "$connections" --out "$tmp/r" "$@" > /dev/null 2>&1; summary_field "$tmp/r" conn_per_s; }

on=() off=() ratios=()
for ((i = 0; i < pairs; i++)); do
  a=$(run)
  b=$(run --netns host --queue-interval 100ms)
  on+=("$a") off+=("$b")
  ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", a / b }')")
done
echo "$(nproc) CPUs, $(uname -r), reuseport, 4 workers, concurrency 64, $connections connections, $pairs pairs"
echo "own namespace, counters, queues every 10 ms: median $(printf '%s\n' "${on[@]}" | median) conn/s (min $(printf '%s\n' "${on[@]}" | sort -g | head -1), max $(printf '%s\n' "${on[@]}" | sort -g | tail -1))"
echo "host namespace, queues every 100 ms        : median $(printf '%s\n' "${off[@]}" | median) conn/s (min $(printf '%s\n' "${off[@]}" | sort -g | head -1), max $(printf '%s\n' "${off[@]}" | sort -g | tail -1))"
echo "per-pair ratio: median $(printf '%s\n' "${ratios[@]}" | median) (min $(printf '%s\n' "${ratios[@]}" | sort -g | head -1), max $(printf '%s\n' "${ratios[@]}" | sort -g | tail -1))"
