#!/usr/bin/env bash
# The harness against the tools people would otherwise use, side by side, in
# one invocation (this machine is shared and noisy: only ratios measured
# together mean anything). Each pair runs A then B, and the pairs repeat:
#
#   generator  wrk -t2 -c64 -H 'Connection: close'  vs  loadgen at concurrency 64,
#              both against the same nginx (4 workers, reuseport, return 200);
#              also loadgen --piggyback-ack (the handshake's ACK rides on the
#              request), shown apart: not the default
#   fleet      nginx-reuseport                      vs  the harness's reuseport fleet,
#              4 workers each, under the same load generator (harness run)
#   recording  harness reuseport, --no-record        vs  latency recorded
#   models     every harness model under the same load, rotated each pair
#
# Prints each measure's median, min and max and the median of the per-pair
# ratios, and writes every sample to bench.csv and the ratios to ratios.csv
# under results/bench/<UTC time>/ (or OUT). Installs wrk and nginx with
# apt-get when missing (as root).
#
# usage: scripts/bench/bench.sh [PAIRS] [SECONDS] [OUT]
#        (defaults: 5 pairs of 5 s runs; about 80 s per pair)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

pairs=${1:-5}
seconds=${2:-5}
positive_ints "$pairs" "$seconds"
out=${3:-results/bench/$(date -u +%Y%m%d-%H%M%S)}

need() { # need BINARY PACKAGE
  command -v "$1" > /dev/null || [ -x "/usr/sbin/$1" ] && return 0
  [ "$(id -u)" = 0 ] || { echo "bench.sh: $1 is missing: apt-get install $2" >&2; exit 1; }
  echo "bench.sh: installing $2 with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" > /dev/null
}
need wrk wrk
need nginx nginx

# HARNESS_BIN and LOADGEN_BIN: binaries already built (the test uses them).
if [ -n "${HARNESS_BIN:-}" ] && [ -n "${LOADGEN_BIN:-}" ]; then
  harness=$HARNESS_BIN
  loadgen=$LOADGEN_BIN
else
  cargo build --release --quiet -p harness -p loadgen
  harness=target/release/harness
  loadgen=target/release/loadgen
fi
models=(shared-blocking shared-epoll epoll-exclusive reuseport dispatch-rr dispatch-least accept-mutex reuseport-cbpf io-uring)
mkdir -p "$out"
tmp=$(mktemp -d)
nginx_pid=
cleanup() {
  if [ -n "$nginx_pid" ]; then kill -TERM "$nginx_pid" 2> /dev/null || true; wait "$nginx_pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# One nginx for the generator comparison (scripts/nginx/run.sh: 4 workers,
# reuseport, return 200), on a free port.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scripts/nginx/run.sh reuseport "$port" > "$tmp/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
  (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  sleep 0.05
done

wrk_cps() {
  wrk -t2 -c64 -d"${seconds}s" -H 'Connection: close' "http://127.0.0.1:$port/" \
    | awk '/^Requests\/sec:/ { print $2 }'
}
loadgen_cps() { # loadgen_cps [OPTION...]
  "$loadgen" --target "127.0.0.1:$port" --concurrency 64 --duration "${seconds}s" "$@" \
    | awk '/^conn\/s:/ { print $2 }'
}
harness_cps() { # harness_cps OPTION...
  "$harness" run --workers 4 --concurrency 64 --duration "${seconds}s" --out "$tmp/run" "$@" > /dev/null
  summary_field "$tmp/run" conn_per_s
  rm -rf "$tmp/run"
}

echo "pair,measure,conn_per_s" > "$out/bench.csv.tmp"
sample() { echo "$1,$2,$3" >> "$out/bench.csv.tmp"; }
for ((p = 0; p < pairs; p++)); do
  sample "$p" wrk "$(wrk_cps)"
  sample "$p" loadgen "$(loadgen_cps)"
  sample "$p" loadgen-piggyback "$(loadgen_cps --piggyback-ack)"
  sample "$p" nginx-reuseport "$(harness_cps --model nginx-reuseport)"
  sample "$p" harness-reuseport "$(harness_cps --model reuseport)"
  sample "$p" no-record "$(harness_cps --model reuseport --no-record)"
  sample "$p" record "$(harness_cps --model reuseport)"
  for ((i = 0; i < ${#models[@]}; i++)); do
    m=${models[$(((i + p) % ${#models[@]}))]}
    sample "$p" "model:$m" "$(harness_cps --model "$m")"
  done
done
mv "$out/bench.csv.tmp" "$out/bench.csv"

# Medians, spreads, and the median over pairs of each pair's ratio.
values() { awk -F, -v m="$1" 'NR > 1 && $2 == m { print $3 }' "$out/bench.csv"; }
ratios() { # ratios A B: A/B of each pair
  awk -F, -v a="$1" -v b="$2" 'NR > 1 && $2 == a { x[$1] = $3 } NR > 1 && $2 == b { y[$1] = $3 }
    END { for (p in x) if (p in y && y[p] > 0) print x[p] / y[p] }' "$out/bench.csv"
}
echo "$(nproc) CPUs, $(uname -r), $pairs pairs of ${seconds} s runs, concurrency 64, 4 workers"
printf '%-26s %10s %10s %10s\n' measure median_cps min_cps max_cps
for m in wrk loadgen loadgen-piggyback nginx-reuseport harness-reuseport no-record record "${models[@]/#/model:}"; do
  printf '%-26s %10.0f %10.0f %10.0f\n' "$m" "$(values "$m" | median)" \
    "$(values "$m" | sort -g | head -1)" "$(values "$m" | sort -g | tail -1)"
done
echo "ratio,a,b,median,min,max,target" > "$out/ratios.csv.tmp"
printf '%-34s %8s %8s %8s %8s\n' ratio median min max target
for spec in "loadgen/wrk:loadgen:wrk:1.25" "loadgen --piggyback-ack/wrk:loadgen-piggyback:wrk:-" "reuseport fleet/nginx:harness-reuseport:nginx-reuseport:1.1" \
  "dispatch-rr/reuseport:model:dispatch-rr:model:reuseport:0.7" "recording on/off:record:no-record:0.98"; do
  IFS=: read -r -a f <<< "$spec"
  if [ "${#f[@]}" = 6 ]; then a="${f[1]}:${f[2]}" b="${f[3]}:${f[4]}" target=${f[5]}; else a=${f[1]} b=${f[2]} target=${f[3]}; fi
  med=$(ratios "$a" "$b" | median)
  lo=$(ratios "$a" "$b" | sort -g | head -1)
  hi=$(ratios "$a" "$b" | sort -g | tail -1)
  shown=">= $target"
  [ "$target" = - ] && shown=-
  printf '%-34s %8.3f %8.3f %8.3f %8s\n' "${f[0]}" "$med" "$lo" "$hi" "$shown"
  echo "${f[0]},$a,$b,$med,$lo,$hi,$target" >> "$out/ratios.csv.tmp"
done
mv "$out/ratios.csv.tmp" "$out/ratios.csv"
echo "samples: $out/bench.csv; ratios: $out/ratios.csv"
