#!/usr/bin/env bash
# A change's cost, side by side: the same `harness run` with the binary
# built from BASE (a git revision) and with this checkout's, alternating
# A B A B, reported as the ratio of median connection rates (this / base)
# and the spread of the per-pair ratios. BASE is built once in a worktree
# under target/ab/ (its own target directory; the first build takes a few
# minutes).
#
# usage: scripts/bench-ab.sh BASE [PAIRS] [CONNECTIONS] [-- RUN_ARGS...]
#   defaults: 7 pairs of 60000 connections, reuseport, 4 workers, concurrency 64
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

[[ $# -ge 1 ]] || { echo "usage: $(basename "$0") BASE [PAIRS] [CONNECTIONS] [-- RUN_ARGS...]" >&2; exit 2; }
base=$1; shift
bench_args "$@"
rev=$(git rev-parse --verify --quiet "$base^{commit}") || { echo "$(basename "$0"): '$base' is not a git revision" >&2; exit 2; }

cargo build --release --quiet -p harness
new=target/release/harness
tree=target/ab/${rev:0:12}
if [[ ! -x $tree/target/release/harness ]]; then
  git worktree remove --force "$tree" 2>/dev/null || true
  git worktree add --detach --force "$tree" "$rev" > /dev/null
  (cd "$tree" && cargo build --release --quiet -p harness)
fi
old=$tree/target/release/harness
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { "$1" run "${args[@]}" --connections "$connections" --out "$tmp/r" > /dev/null 2>&1; summary_field "$tmp/r" conn_per_s; }

a=() b=() ratios=()
for ((i = 0; i < pairs; i++)); do
  x=$(run "$old")
  y=$(run "$new")
  a+=("$x") b+=("$y")
  ratios+=("$(awk -v a="$y" -v b="$x" 'BEGIN { printf "%.4f", a / b }')")
done
spread() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd' ' | awk '{ printf "min %s, max %s", $1, $2 }'; }
echo "$(nproc) CPUs, $(uname -r), harness run ${args[*]} --connections $connections, $pairs pairs"
echo "base ${rev:0:12}: median $(printf '%s\n' "${a[@]}" | median) conn/s ($(spread "${a[@]}"))"
echo "this checkout : median $(printf '%s\n' "${b[@]}" | median) conn/s ($(spread "${b[@]}"))"
echo "per-pair ratio this/base: median $(printf '%s\n' "${ratios[@]}" | median) ($(spread "${ratios[@]}"))"
