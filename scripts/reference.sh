#!/usr/bin/env bash
# Regenerates the reference results, results/reference/: everything
# `harness reproduce`, the `models` and `load-sweep` scenarios, `harness
# external all` (nginx and Node.js, which it installs when missing) and, as
# root, the `churn` scenario (it sets net.ipv4.tcp_migrate_req) write on this
# machine. Only what the reports and the README need is committed (reports,
# SVG charts, runs/workers/aggregate CSVs, sweep.json with the machine's
# meta, under 5 MB); the per-run folders, hlogs, time series and PNGs are
# regenerated here and ignored by git (.gitignore).
# The side-by-side bench (results/reference/bench, from scripts/bench/bench.sh)
# is carried over. Takes about 14 minutes on 2 cores; run it on an otherwise
# idle machine.
#
# usage: scripts/reference.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p harness
bin=target/release/harness
new=results/.reference.new
rm -rf "$new"
mkdir -p "$new"

"$bin" reproduce --out "$new/reproduce"
"$bin" sweep scenarios/models.toml --seed 1 --out "$new/models"
"$bin" sweep scenarios/load-sweep.toml --seed 1 --out "$new/load-sweep"
"$bin" external all --out "$new/external"
if [ "$(id -u)" = 0 ]; then
  "$bin" sweep scenarios/churn.toml --seed 1 --out "$new/churn"
elif [ -d results/reference/churn ]; then
  echo "reference.sh: not root, keeping the old churn results" >&2
  cp -r results/reference/churn "$new/churn"
fi
[ -d results/reference/bench ] && cp -r results/reference/bench "$new/bench"

# Swap in the new set only once all have finished.
rm -rf results/reference.old
[ -d results/reference ] && mv results/reference results/reference.old
mv "$new" results/reference
rm -rf results/reference.old
echo "reference results: results/reference/{reproduce,models,load-sweep,external,churn}/report.html"
echo "committed part: $(git ls-files -co --exclude-standard results/reference | xargs du -ch | tail -1)"
