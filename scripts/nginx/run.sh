#!/usr/bin/env bash
# run.sh MODE [PORT]: run nginx in the foreground under one accept
# configuration and, when it stops, print how many connections and requests
# each worker served (counted from its access log).
#
#   MODE  exclusive  accept_mutex off (EPOLLEXCLUSIVE on Linux >= 4.5)
#         mutex      accept_mutex on
#         reuseport  accept_mutex off + listen ... reuseport (one socket per worker)
#   PORT  TCP port on 127.0.0.1 (default 8080)
#   env WORKERS  worker processes (default 4)
#   env NGINX    the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
#
# stdout: first the prefix directory (config, pid, logs), then, after nginx
# exits, one line per worker, in pid order:
#   worker <pid> got <C> connections <R> requests
# where R = access-log lines with that pid and C = those whose
# $connection_requests is 1. Stop it with SIGQUIT (graceful) to the nginx
# master (pid in PREFIX/nginx.pid) or SIGTERM/SIGINT/SIGQUIT to this script
# (forwarded to nginx as SIGQUIT). The prefix directory is kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=${1:-}
port=${2:-8080}
workers=${WORKERS:-4}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

case "$mode" in
  exclusive) mutex=off reuseport='' ;;
  mutex) mutex=on reuseport='' ;;
  reuseport) mutex=off reuseport=' reuseport' ;;
  *) echo "usage: run.sh exclusive|mutex|reuseport [PORT] (got MODE '$mode')" >&2; exit 2 ;;
esac
[[ "$port" =~ ^[1-9][0-9]*$ && "$port" -le 65535 ]] || { echo "run.sh: PORT '$port' is not in 1..65535" >&2; exit 2; }
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: WORKERS '$workers' is not a positive whole number" >&2; exit 2; }

prefix=$(mktemp -d /tmp/nginx-accept.XXXXXX)
# Workers run as nobody: let them reach the temp dirs inside the prefix.
chmod 755 "$prefix"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$workers|g" \
    -e "s|@ACCEPT_MUTEX@|$mutex|g" -e "s|@REUSEPORT@|$reuseport|g" \
    "$here/nginx.conf.in" > "$prefix/nginx.conf"
: > "$prefix/access.log"

# nginx -t prints to stderr; stdout stays for the protocol.
"$nginx" -t -q -p "$prefix" -c "$prefix/nginx.conf" >&2
echo "$prefix"

nginx_pid=''
worker_pids=''

report() {
  # Workers that served nothing have no log lines: take them from the pids
  # seen while nginx ran, so they are reported with 0.
  {
    for p in $worker_pids; do echo "$p -"; done
    cat "$prefix/access.log"
  } | awk '
    $2 != "-" { r[$1]++; if ($2 == 1) c[$1]++ }
    { seen[$1] = 1 }
    END { for (p in seen) printf "worker %s got %d connections %d requests\n", p, c[p], r[p] }
  ' | sort -k2,2n
}

stop() {
  [[ -n "$nginx_pid" ]] && kill -QUIT "$nginx_pid" 2>/dev/null || true
}

trap report EXIT
trap stop TERM INT QUIT HUP

"$nginx" -p "$prefix" -c "$prefix/nginx.conf" &
nginx_pid=$!

# Note the worker pids once they are all up (at most ~5 s).
for _ in $(seq 100); do
  worker_pids=$(pgrep -P "$nginx_pid" || true)
  [[ $(wc -w <<< "$worker_pids") -ge "$workers" ]] && break
  kill -0 "$nginx_pid" 2>/dev/null || break
  sleep 0.05
done

# wait returns early (status > 128) when a trapped signal arrives: wait
# again until nginx itself has exited, then take its exit status (bash keeps
# the status of a reaped background job for a later wait).
while kill -0 "$nginx_pid" 2>/dev/null; do
  wait "$nginx_pid" || true
done
status=0
wait "$nginx_pid" || status=$?
exit "$status"
