#!/usr/bin/env bash
# Connections per second of every accept model under the same closed-loop
# load, measured side by side: the models run in a rotated order each round,
# so drift on a shared machine spreads over all of them. Prints, per model,
# the median, min and max conn/s over the rounds and the ratio of medians to
# `reuseport`, and writes every sample to a CSV.
#
# usage: scripts/bench-models.sh [ROUNDS] [CONNECTIONS] [CONCURRENCY]
#        (defaults: 5 rounds, 60000 connections, concurrency 64, 4 workers)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=${1:-5}
connections=${2:-60000}
concurrency=${3:-64}
positive_ints "$rounds" "$connections" "$concurrency"

cargo build --release --quiet -p harness
bin=target/release/harness
models=(shared-blocking shared-epoll epoll-exclusive reuseport dispatch-rr dispatch-least accept-mutex reuseport-cbpf reuseport-ebpf-rr reuseport-ebpf-least reuseport-ebpf-migrate io-uring)
mkdir -p results
csv=results/bench-models-$(date -u +%Y%m%d-%H%M%S).csv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "round,model,conn_per_s,jain,loadgen_cpu_ms,worker_cpu_ms" > "$csv.tmp"
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < ${#models[@]}; i++)); do
    m=${models[$(((i + r) % ${#models[@]}))]}
    "$bin" run --model "$m" --workers 4 --concurrency "$concurrency" \
      --connections "$connections" --out "$tmp/$m" > /dev/null
    echo "$r,$m,$(summary_field "$tmp/$m" conn_per_s),$(summary_field "$tmp/$m" jain),$(summary_field "$tmp/$m" loadgen_cpu_ms),$(summary_field "$tmp/$m" worker_cpu_ms)" >> "$csv.tmp"
  done
done
mv "$csv.tmp" "$csv"

col() { awk -F, -v m="$1" 'NR > 1 && $2 == m { print $3 }' "$csv"; }
base=$(col reuseport | median)
echo "$(nproc) CPUs, $(uname -r), $rounds rounds, $connections connections at concurrency $concurrency, 4 workers"
printf '%-16s %10s %10s %10s %14s\n' model median_cps min_cps max_cps vs_reuseport
for m in "${models[@]}"; do
  med=$(col "$m" | median)
  printf '%-16s %10.0f %10.0f %10.0f %14.2f\n' "$m" "$med" "$(col "$m" | sort -g | head -1)" \
    "$(col "$m" | sort -g | tail -1)" "$(awk -v a="$med" -v b="$base" 'BEGIN { print a / b }')"
done
echo "samples: $csv"
