# Shared by the benchmark scripts: build once, run the harness, read figures.
# Source it; it defines functions only.

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# summary_field DIR COLUMN: a column of the one-row summary.csv in DIR.
summary_field() {
  awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { print $c[col] }' "$1/summary.csv"
}

# positive_ints VALUE...: exit 2 unless every value is a positive whole number.
positive_ints() {
  for v in "$@"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "$(basename "$0"): '$v' is not a positive whole number" >&2; exit 2; }
  done
}

# bench_args ARGS...: reads `[PAIRS] [CONNECTIONS] [-- RUN_ARGS...]` into
# $pairs (default 7), $connections (60000) and the array $args (default:
# reuseport, 4 workers, concurrency 64); exit 2 on a bad number.
bench_args() {
  pairs=7 connections=60000
  [[ $# -gt 0 && $1 != -- ]] && { pairs=$1; shift; }
  [[ $# -gt 0 && $1 != -- ]] && { connections=$1; shift; }
  [[ $# -gt 0 && $1 == -- ]] && shift
  positive_ints "$pairs" "$connections"
  args=("$@")
  [[ ${#args[@]} -gt 0 ]] || args=(--model reuseport --workers 4 --concurrency 64)
}
