#!/usr/bin/env bash
# What --attribute kernel costs: the same run with and without the kernel's
# accept counters (filtered, inherited perf counters on the accept
# tracepoints, on every thread of the subject), alternating A B A B,
# reported as the ratio of median connection rates (with / without) and the
# spread of the per-pair ratios, and the same for the CPU time per connection
# of the workers and the load generator together (less moved by what else
# runs on the machine than the rate). Needs root (the counters).
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
# conn/s and µs of CPU (workers + load generator) per connection.
run() {
  "$bin" run "${args[@]}" --connections "$connections" --out "$tmp/r" "$@" > /dev/null 2>&1
  echo "$(summary_field "$tmp/r" conn_per_s) $(summary_field "$tmp/r" worker_cpu_ms) $(summary_field "$tmp/r" loadgen_cpu_ms) $(summary_field "$tmp/r" completed)" |
    awk '{ printf "%s %.2f\n", $1, ($2 + $3) * 1000 / $4 }'
}

on=() off=() ratios=() cpu_on=() cpu_off=() cpu_ratios=()
for ((i = 0; i < pairs; i++)); do
  read -r a ca <<< "$(run --attribute kernel)"
  read -r b cb <<< "$(run)"
  on+=("$a") off+=("$b") cpu_on+=("$ca") cpu_off+=("$cb")
  ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", a / b }')")
  cpu_ratios+=("$(awk -v a="$ca" -v b="$cb" 'BEGIN { printf "%.4f", a / b }')")
done
spread() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "min %s, max %s", a[1], a[NR] }'; }
echo "$(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); ${args[*]}, $connections connections, $pairs pairs"
echo "--attribute kernel: median $(printf '%s\n' "${on[@]}" | median) conn/s ($(spread "${on[@]}"))"
echo "without           : median $(printf '%s\n' "${off[@]}" | median) conn/s ($(spread "${off[@]}"))"
echo "per-pair ratio (with / without): median $(printf '%s\n' "${ratios[@]}" | median) ($(spread "${ratios[@]}"))"
echo "CPU us per connection: with median $(printf '%s\n' "${cpu_on[@]}" | median), without $(printf '%s\n' "${cpu_off[@]}" | median); per-pair ratio median $(printf '%s\n' "${cpu_ratios[@]}" | median) ($(spread "${cpu_ratios[@]}"))"
