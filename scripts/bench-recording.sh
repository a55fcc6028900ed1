#!/usr/bin/env bash
# What recording latencies costs: the same run with recording on (every
# phase into HdrHistograms, per worker, plus the interval log) and off
# (--no-record), alternating A B A B, reported as the ratio of median
# connection rates. Also the harness's peak RSS over a long run, to show
# that memory stays flat (no per-request storage).
#
# usage: scripts/bench-recording.sh [PAIRS] [CONNECTIONS] [LONG_CONNECTIONS]
#        (defaults: 7 pairs of 60000 connections; a 1000000-connection run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

pairs=${1:-7}
connections=${2:-60000}
long=${3:-1000000}
positive_ints "$pairs" "$connections" "$long"

cargo build --release --quiet -p harness
bin=target/release/harness
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { "$bin" run --model reuseport --workers 4 --concurrency 64 --connections "$connections" --out "$tmp/r" "$@" > /dev/null; summary_field "$tmp/r" conn_per_s; }

on=() off=()
for ((i = 0; i < pairs; i++)); do
  on+=("$(run)")
  off+=("$(run --no-record)")
done
mon=$(printf '%s\n' "${on[@]}" | median)
moff=$(printf '%s\n' "${off[@]}" | median)
echo "$(nproc) CPUs, $(uname -r), reuseport, 4 workers, concurrency 64, $connections connections, $pairs pairs"
echo "recording on : median $mon conn/s (min $(printf '%s\n' "${on[@]}" | sort -g | head -1), max $(printf '%s\n' "${on[@]}" | sort -g | tail -1))"
echo "recording off: median $moff conn/s (min $(printf '%s\n' "${off[@]}" | sort -g | head -1), max $(printf '%s\n' "${off[@]}" | sort -g | tail -1))"
echo "on/off ratio : $(awk -v a="$mon" -v b="$moff" 'BEGIN { printf "%.3f", a / b }')"

for n in $((long / 10)) "$long"; do
  "$bin" run --model reuseport --workers 4 --concurrency 64 --connections "$n" --out "$tmp/long" > /dev/null
  kib=$(sed -n 's/.*"harness_peak_rss_kib": \([0-9]*\).*/\1/p' "$tmp/long/meta.json")
  echo "peak RSS of the harness over $n connections: $((kib / 1024)) MiB ($(summary_field "$tmp/long" conn_per_s) conn/s)"
done
