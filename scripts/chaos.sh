#!/usr/bin/env bash
# chaos.sh N SEED: the harness under random signals.
#
# Runs N short trials and sends each one signal (SIGINT, SIGTERM or SIGKILL,
# to the harness or, for SIGINT/SIGTERM, to its whole process group as a
# terminal's Ctrl-C does; one in six SIGINT/SIGTERM trials sends the same
# signal again 0-79 ms later, which ends the harness at once) at a random
# moment between its start and its expected end, so that signals land in
# every phase: start, warm-up, load, drain, teardown, chart drawing, or after
# the end (then none is sent). The kinds rotate, trial i (from 1) by i mod 5:
#   1 run       harness run, one of the nine models, 1-3 s or 20000
#               connections, closed or open loop, keep-alive, a warm-up, a
#               thread fleet or a killed and respawned worker, drawn;
#   2 sweep     a scenario written to the trial's directory: 2-4 runs of 1 s,
#               sometimes a rate of 50% (so a capacity run first), sometimes
#               tcp_migrate_req with a rolling restart, charts or --no-plots;
#   3 migrate   harness run of reuseport(-cbpf) with --tcp-migrate-req set to
#               the opposite of the current value, often a rolling restart
#               (not root: a plain run, said on the trial's line);
#   4 server    harness run --model nginx-reuseport or node-rr, 1-2 s;
#   0 external  harness external nginx-reuseport --connections 3000 every
#               tenth trial, a sweep otherwise.
# Everything is drawn from SEED (bash's $RANDOM), so a seed names a fixed
# list of trials (CHAOS_DRY=1 prints it); each runs in a session of its own
# (setsid), with SIGINT and SIGTERM at their default actions, an explicit
# --port from 20000-29999 where the command takes one, and its own TMPDIR.
#
# After each trial it checks that:
#   - the harness exits within 30 s of the signal, with 130 (SIGINT), 143
#     (SIGTERM) or 137 (SIGKILL), or 0/1 if it had exited before the signal
#     was due (then no signal is sent); a caught signal stops it within
#     CHAOS_STOP_LIMIT ms (default 5000); a run's summary.csv says
#     complete=true if it exited 0;
#   - no process of the trial is left, judged by its process group, by its
#     session (the real servers run in process groups of their own), by an
#     environment marker, and by the listening ports: the --port given to a
#     run, and every port a process of the trial was seen listening on;
#   - every CSV under the output parses (each row as many fields as the
#     header, a final newline) and every JSON parses; after a caught signal
#     no temporary file (.NAME.tmp) and no server temp dir is left;
#   - a sweep (and `harness external`, which is one) resumes: `harness sweep
#     --resume DIR --quiet --no-plots` exits 0 and runs.csv then has every
#     run of sweep.json's "order" with complete=true, each with its own
#     runs/<id>/summary.csv, and no temporary file is left;
#   - net.ipv4.tcp_migrate_req is what it was before the trial. A
#     --tcp-migrate-req run ended at once (SIGKILL, or a second signal)
#     cannot restore it (a known limitation, README "Faults and reloads"):
#     that is reported as KNOWN, counted apart from the failures, and the
#     script restores the value itself. The trials set the opposite of the
#     current value, so the check means something. A change during a trial
#     that does not set it is another process's doing (tests elsewhere on
#     the machine): said on the line, not counted.
# A SIGKILL or a second signal may leave .NAME.tmp files and the servers'
# temp dirs (said on the line); a caught signal may not.
#
# One line per trial, then `chaos: N trials, F failures`; exit 1 if F > 0.
# Environment: HARNESS (the binary; default target/release/harness, built
# with cargo if missing), CHAOS_OUT (where outputs go; default a temporary
# directory, removed at the end unless a trial failed; a given one is kept),
# CHAOS_STOP_LIMIT (ms, see above), CHAOS_DRY=1 (print the trials a seed
# draws, run nothing).
set -euo pipefail
export LC_ALL=C

usage() {
  echo "usage: $(basename "$0") N SEED   (N trials, seeded; env HARNESS, CHAOS_OUT, CHAOS_STOP_LIMIT, CHAOS_DRY)" >&2
  exit 2
}
[[ $# -eq 2 ]] || usage
[[ "$1" =~ ^[1-9][0-9]*$ && "$2" =~ ^[0-9]+$ ]] || usage
N=$1
SEED=$2
STOP_LIMIT=${CHAOS_STOP_LIMIT:-5000}
DRY=${CHAOS_DRY:-0}
[[ "$STOP_LIMIT" =~ ^[1-9][0-9]*$ ]] || usage
EXIT_BOUND=30000    # ms the harness gets to exit after the signal
LEFT_BOUND=3000     # ms its processes and listeners get to go after it exited
RESUME_BOUND=120000 # ms a resume gets

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEFAULT_HARNESS=$ROOT/target/release/harness
HARNESS=${HARNESS:-$DEFAULT_HARNESS}
if [[ ! -x "$HARNESS" ]]; then
  if [[ "$HARNESS" == "$DEFAULT_HARNESS" ]]; then
    echo "chaos: building the harness (cargo build --release -p harness)" >&2
    (cd "$ROOT" && cargo build --release -p harness) >&2
  else
    echo "chaos: HARNESS=$HARNESS is not an executable" >&2
    exit 2
  fi
fi
HARNESS=$(cd "$(dirname "$HARNESS")" && pwd)/$(basename "$HARNESS")

for tool in python3 ss setsid pgrep find awk; do
  command -v "$tool" >/dev/null || { echo "chaos: $tool is needed" >&2; exit 2; }
done
# Background commands of a script start with SIGINT and SIGQUIT ignored;
# env resets them so the harness sees what it would see from a terminal.
env --default-signal=INT true 2>/dev/null || { echo "chaos: needs env --default-signal (coreutils 8.31+)" >&2; exit 2; }

if [[ -n "${CHAOS_OUT:-}" ]]; then
  OUT=$CHAOS_OUT
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  KEEP_OUT=1
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/chaos.XXXXXX")
  KEEP_OUT=0
fi

SYSCTL=/proc/sys/net/ipv4/tcp_migrate_req
IS_ROOT=0
[[ $EUID -eq 0 && -w $SYSCTL ]] && IS_ROOT=1
read_sysctl() { if [[ -r $SYSCTL ]]; then SYSCTL_NOW=$(<"$SYSCTL"); else SYSCTL_NOW=none; fi; }
read_sysctl
CUR_SYSCTL="" # the value before the running trial, if it sets the sysctl
HAVE_NGINX=0 HAVE_NODE=0
command -v nginx >/dev/null && HAVE_NGINX=1
command -v node >/dev/null && HAVE_NODE=1

FAILS=0
KNOWN=0
MAIN_PID=$$
CUR_PID="" # the session of the command running now, for the exit trap

# shellcheck disable=SC2317 # (called by the trap)
on_exit() {
  local rc=$?
  # Only the script itself: a subshell (the port watcher) signalled while
  # it forks can run a copy of this trap before bash resets it, and must
  # not kill the trial it watches.
  [[ $BASHPID == "$MAIN_PID" ]] || exit "$rc"
  if [[ -n "$CUR_PID" ]]; then
    kill -KILL -- "-$CUR_PID" 2>/dev/null || true
    local p
    for p in $(pgrep -s "$CUR_PID" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
    echo "chaos: cut short; outputs in $OUT" >&2
  fi
  # Cut inside a trial that sets the sysctl: put back what it found.
  read_sysctl
  if [[ -n "$CUR_SYSCTL" && "$SYSCTL_NOW" != "$CUR_SYSCTL" ]]; then
    echo "$CUR_SYSCTL" >"$SYSCTL" && echo "chaos: restored net.ipv4.tcp_migrate_req=$CUR_SYSCTL" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# NOW: milliseconds since the epoch (no fork).
clock() {
  local t=${EPOCHREALTIME/./}
  NOW=$((t / 1000))
}

# snooze SECONDS, without a fork (a read that times out on a pipe nobody
# writes to): the polling loops stay on time on a machine the load saturates.
exec {SLEEP_FD}<> <(:)
snooze() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# R: a number in [0, $1), from the seeded $RANDOM (30 bits).
rnd() { R=$((((RANDOM << 15) | RANDOM) % $1)); }

# pick WORD...: R is one of the words.
pick() {
  local a=("$@")
  rnd ${#a[@]}
  R=${a[$R]}
}

# PSTATE: the state letter of process $1 (Z once it exited; X while it is
# exiting, PF_EXITING in its flags: past the point where a signal changes
# anything), or "gone"; PSID: its session.
pstate() {
  local line rest flags
  if ! { read -r line <"/proc/$1/stat"; } 2>/dev/null; then
    PSTATE=gone
    PSID=""
    return 0
  fi
  rest=${line##*) }
  read -r PSTATE _ _ PSID _ _ flags _ <<<"$rest"
  # (a zombie has the flag too, and stays Z)
  if [[ $PSTATE != Z ]] && ((flags & 4)); then PSTATE=X; fi
  return 0
}

# The ports processes of session $1 listen on go into PORTS.
declare -A PORTS=()
note_listeners() {
  local pids p inodes
  pids=$(pgrep -s "$1" 2>/dev/null | tr '\n' ' ') || true
  [[ -n "${pids// /}" ]] || return 0
  local dirs=()
  for p in $pids; do dirs+=("/proc/$p/fd"); done
  inodes=" $( { find "${dirs[@]}" -maxdepth 1 -lname 'socket:*' -printf '%l\n' 2>/dev/null || true; } | tr -dc '0-9\n' | tr '\n' ' ') "
  [[ -n "${inodes// /}" ]] || return 0
  # ss asks the kernel for listeners only (/proc/net/tcp would list every
  # TIME_WAIT socket too: slow after a fast run).
  while read -r p; do
    [[ "$p" =~ ^[0-9]+$ ]] && PORTS[$p]=1
  done < <(ss -Hltne 2>/dev/null | awk -v want="$inodes" '{
      for (j = 5; j <= NF; j++) if ($j ~ /^ino:/) { ino = substr($j, 5); if (index(want, " " ino " ")) { n = split($4, a, ":"); print a[n] } }
    }' || true)
  return 0
}

# watch SID FILE: in the background, every 200 ms while SID lives, notes
# the listening ports of session SID's processes into FILE, and into
# FILE.foreign the processes outside it that set tcp_migrate_req (other
# tests on the machine), so that their change of it is not blamed on the
# trial; sets WATCHER.
watch() {
  (
    trap - EXIT INT TERM
    local p
    while [[ -e /proc/$1 ]]; do
      note_listeners "$1"
      ((${#PORTS[@]} == 0)) || printf '%s\n' "${!PORTS[@]}" >"$2"
      for p in $(pgrep -f -- '--tcp-migrate-req|tcp_migrate_req|churn' 2>/dev/null || true); do
        pstate "$p"
        [[ "$PSTATE" == gone || "$PSID" == "$1" ]] && continue
        echo "$p: $( { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -c1-160)" >>"$2.foreign"
      done
      sleep 0.2
    done
  ) </dev/null &
  WATCHER=$!
}

# unwatch FILE: stops the watcher, adds the ports it saw to PORTS, and
# sets FOREIGN to the foreign processes it saw (or "").
unwatch() {
  kill "$WATCHER" 2>/dev/null || true
  wait "$WATCHER" 2>/dev/null || true
  local p
  if [[ -f "$1" ]]; then
    while read -r p; do [[ -n "$p" ]] && PORTS[$p]=1; done <"$1"
  fi
  FOREIGN=""
  if [[ -s "$1.foreign" ]]; then
    FOREIGN=$(sort -u "$1.foreign" | head -n 2 | tr '\n' ';')
  fi
  return 0
}

# living PID...: those that are not zombies (a dead process whose parent,
# often init after the harness died, has not reaped it yet holds nothing).
living() {
  local p
  for p in "$@"; do
    pstate "$p"
    [[ "$PSTATE" == Z || "$PSTATE" == gone ]] || printf '%s ' "$p"
  done
}

# Pids of processes whose environment carries the trial's marker.
marker_pids() {
  { grep -l -a -F "CHAOS_TRIAL=$1" /proc/[0-9]*/environ 2>/dev/null || true; } | cut -d/ -f3 | tr '\n' ' '
}

# describe PID...: "pid(comm) ..."
describe() {
  local p c out=""
  for p in "$@"; do
    c=$(cat "/proc/$p/comm" 2>/dev/null || echo '?')
    out+="$p($c) "
  done
  echo "${out% }"
}

# start TAG LOG DIR CMD...: CMD in a session of its own, cwd DIR, output to
# LOG, SIGINT/SIGTERM/SIGQUIT at their default; sets PID once the session exists.
start() {
  local tag=$1 log=$2 dir=$3
  shift 3
  mkdir -p "$dir/tmp"
  (cd "$dir" && exec env --default-signal=INT,TERM,QUIT CHAOS_TRIAL="$tag" TMPDIR="$dir/tmp" setsid "$@") \
    >"$log" 2>&1 </dev/null &
  PID=$!
  CUR_PID=$PID
  # setsid(2) happens right after the fork; wait for it so that the
  # process group and session are the pid's.
  local i
  for ((i = 0; i < 2000; i++)); do
    pstate "$PID"
    [[ "$PSTATE" == gone || "$PSTATE" == Z || "$PSID" == "$PID" ]] && break
    snooze 0.001
  done
  return 0
}

# send SIG pid|group: the signal to PID, or to its process group (as a
# terminal's Ctrl-C reaches every process of the foreground group).
send() {
  if [[ $2 == group ]]; then
    kill -s "$1" -- "-$PID" 2>/dev/null || kill -s "$1" "$PID" 2>/dev/null || true
  else
    kill -s "$1" "$PID" 2>/dev/null || true
  fi
}

# await BOUND_MS: polls PID until it exits or BOUND_MS pass; sets EXITED
# (1/0), RC, and EXIT_SEEN (ms).
await() {
  local bound=$1 t0
  clock
  t0=$NOW
  EXITED=0
  while :; do
    pstate "$PID"
    clock
    if [[ "$PSTATE" == Z || "$PSTATE" == X || "$PSTATE" == gone ]]; then
      EXITED=1
      EXIT_SEEN=$NOW
      break
    fi
    ((NOW - t0 < bound)) || break
    snooze 0.01
  done
  if [[ $EXITED == 0 ]]; then
    EXIT_SEEN=$NOW
    kill -KILL -- "-$PID" 2>/dev/null || true
    kill -KILL "$PID" 2>/dev/null || true
  fi
  RC=0
  wait "$PID" 2>/dev/null || RC=$?
}

# leftovers TAG PORT...: waits up to LEFT_BOUND for every process of session
# PID (group, session, marker) and every listener on the ports to go; sets
# LEFT to a description of what stayed (empty if nothing), then kills it.
leftovers() {
  local tag=$1
  shift
  local t0 grp ses mrk lst p
  clock
  t0=$NOW
  while :; do
    # shellcheck disable=SC2046
    {
      grp=$(living $(pgrep -g "$PID" 2>/dev/null || true))
      ses=$(living $(pgrep -s "$PID" 2>/dev/null || true))
      mrk=$(living $(marker_pids "$tag"))
    }
    lst=""
    for p in "$@"; do
      [[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]] && lst+="$p "
    done
    [[ -z "${grp// /}${ses// /}${mrk// /}${lst// /}" ]] && break
    clock
    ((NOW - t0 < LEFT_BOUND)) || break
    snooze 0.05
  done
  LEFT=""
  # shellcheck disable=SC2086
  {
    [[ -n "${grp// /}" ]] && LEFT+="process group $PID: $(describe $grp); "
    [[ -n "${ses// /}" ]] && LEFT+="session $PID: $(describe $ses); "
    [[ -n "${mrk// /}" ]] && LEFT+="marked processes: $(describe $mrk); "
    for p in $lst; do
      LEFT+="port $p still listening: $(ss -Hltnp "sport = :$p" 2>/dev/null | grep -o 'users:.*' | head -1); "
    done
  }
  LEFT=${LEFT%; }
  if [[ -n "$LEFT" ]]; then
    kill -KILL -- "-$PID" 2>/dev/null || true
    for p in $grp $ses $mrk; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  CUR_PID=""
  return 0
}

# check_files MODE DIR: MODE parse (every CSV and JSON under DIR) or resume
# (also: the sweep in DIR has every planned run complete). Prints BAD, TMP
# and INFO lines.
check_files() {
  python3 - "$1" "$2" <<'PY' || echo "BAD the checker failed (exit $?)"
import csv, io, json, os, sys

mode, root = sys.argv[1], sys.argv[2]
ncsv = 0
for d, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)
        if f.endswith(".tmp"):
            print("TMP", rel)
        elif f.endswith(".csv"):
            ncsv += 1
            try:
                with open(p, newline="") as fh:
                    data = fh.read()
            except Exception as e:
                print("BAD", rel, "unreadable:", e)
                continue
            if not data:
                print("BAD", rel, "is empty (no header)")
                continue
            if not data.endswith("\n"):
                print("BAD", rel, "does not end with a newline (cut short?)")
            try:
                rows = list(csv.reader(io.StringIO(data)))
            except csv.Error as e:
                print("BAD", rel, "csv error:", e)
                continue
            header = rows[0]
            if not header or any(h == "" for h in header):
                print("BAD", rel, "header has an empty column name:", ",".join(header)[:120])
            for i, r in enumerate(rows[1:], start=2):
                if len(r) != len(header):
                    print("BAD", rel, f"line {i}: {len(r)} fields, header has {len(header)}")
                    break
        elif f.endswith(".json"):
            try:
                with open(p) as fh:
                    json.load(fh)
            except Exception as e:
                print("BAD", rel, "does not parse as JSON:", e)
print("INFO csv", ncsv)

if mode == "resume":
    try:
        with open(os.path.join(root, "sweep.json")) as fh:
            order = json.load(fh)["order"]
        with open(os.path.join(root, "runs.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
    except Exception as e:
        print("BAD after the resume:", e)
        sys.exit(0)
    seen = {}
    for r in rows:
        rid = r.get("run_id")
        if rid in seen:
            print("BAD runs.csv has", rid, "twice")
        seen[rid] = r
    missing = [o for o in order if o not in seen]
    cut = [o for o in order if o in seen and seen[o].get("complete") != "true"]
    extra = [s for s in seen if s not in order]
    if missing:
        print("BAD runs.csv lacks", len(missing), "planned runs:", " ".join(missing))
    if cut:
        print("BAD runs.csv has", len(cut), "runs not complete=true:", " ".join(cut))
    if extra:
        print("BAD runs.csv has runs not in sweep.json's order:", " ".join(extra))
    for o in order:
        s = os.path.join(root, "runs", o, "summary.csv")
        try:
            with open(s, newline="") as fh:
                srows = list(csv.DictReader(fh))
            if len(srows) != 1 or srows[0].get("complete") != "true":
                print("BAD runs/%s/summary.csv is not one complete row" % o)
        except FileNotFoundError:
            print("BAD runs/%s/summary.csv is missing" % o)
    print("INFO planned", len(order), "complete", len(order) - len(missing) - len(cut))
PY
}

# ---------------------------------------------------------------- trials

MODELS=(shared-blocking shared-epoll epoll-exclusive reuseport dispatch-rr dispatch-least accept-mutex reuseport-cbpf reuseport-ebpf-rr reuseport-ebpf-least reuseport-ebpf-migrate io-uring)

# A free port from 20000-29999 (below the ephemeral range), not drawn from
# $RANDOM so that the trials stay the same whatever is in use.
free_port() {
  local a p
  for ((a = 0; a < 200; a++)); do
    p=$((20000 + (SEED * 131 + $1 * 17 + a * 7919) % 10000))
    [[ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]] && { PORT=$p; return 0; }
  done
  echo "chaos: no free port in 20000-29999" >&2
  exit 2
}

# Draws trial $1's kind and parameters: CMD, KIND, DESC, EXPECT (ms),
# SWEEP (1: its output is a sweep to resume), MIGRATE (1: it sets the
# sysctl), NOTE (a substitution made, said on the trial's line).
plan() {
  local i=$1 tdir=$2 k m d w load
  CMD=()
  NOTE=""
  SWEEP=0
  MIGRATE=0
  PORT=""
  k=$(((i - 1) % 5))
  if ((k == 4)); then
    if ((((i - 1) / 5) % 2 == 0)); then k=external; else k=sweep; fi
  else
    k=$(echo run sweep migrate server | cut -d' ' -f$((k + 1)))
  fi
  case $k in
    run | migrate)
      if [[ $k == run ]]; then
        pick "${MODELS[@]}"
        m=$R
      else
        pick reuseport reuseport-cbpf
        m=$R
      fi
      rnd 3
      d=$((R + 1))
      rnd 3
      w=$((R + 2))
      CMD=("$HARNESS" run --model "$m" --workers "$w")
      DESC="$m/$w"
      rnd 4
      load=$R
      case $load in
        0) pick 1 4 32 64; CMD+=(--concurrency "$R" --duration "${d}s"); DESC+=",c$R,${d}s" ;;
        1) pick 2000 5000 10000; CMD+=(--rate "$R" --max-inflight 64 --duration "${d}s"); DESC+=",r$R,${d}s" ;;
        2) CMD+=(--concurrency 32 --connections 20000); DESC+=",20k" ;;
        3) CMD+=(--concurrency 16 --requests-per-conn 5 --duration "${d}s"); DESC+=",k5,${d}s" ;;
      esac
      EXPECT=$(((load == 2 ? 1 : d) * 1000 + 300))
      rnd 3
      if ((R == 0)); then CMD+=(--warmup 300ms); DESC+=",warm"; EXPECT=$((EXPECT + 300)); fi
      rnd 4
      local threads=$R
      rnd 5
      local fault=$R
      # Faults need a fleet of processes.
      if [[ $k == migrate ]] && ((fault < 3)); then
        CMD+=(--rolling-restart 300ms)
        DESC+=",reload"
      elif [[ $k == run ]] && ((fault == 0)) && [[ $m != io-uring ]]; then
        CMD+=(--kill-worker 1@300ms --respawn)
        DESC+=",kill"
      elif ((threads == 0)); then
        CMD+=(--fleet threads)
        DESC+=",threads"
      fi
      CMD+=(--timeout 2s)
      if [[ $k == migrate ]]; then
        local want=on
        [[ "$SYSCTL_NOW" == 1 ]] && want=off
        if [[ $IS_ROOT == 1 ]]; then
          CMD+=(--tcp-migrate-req "$want")
          DESC+=",migrate=$want"
          MIGRATE=1
        else
          k=run
          NOTE="not root: migrate trial run without --tcp-migrate-req"
        fi
      fi
      free_port "$i"
      CMD+=(--port "$PORT" --out "$tdir/out")
      ;;
    server)
      pick nginx-reuseport node-rr
      m=$R
      if [[ $m == nginx-reuseport && $HAVE_NGINX == 0 && $IS_ROOT == 0 && $HAVE_NODE == 1 ]]; then
        m=node-rr
        NOTE="nginx missing (not root to install it): node-rr instead"
      elif [[ $m == node-rr && $HAVE_NODE == 0 && $IS_ROOT == 0 && $HAVE_NGINX == 1 ]]; then
        m=nginx-reuseport
        NOTE="node missing (not root to install it): nginx-reuseport instead"
      fi
      rnd 2
      d=$((R + 1))
      pick 2 16
      free_port "$i"
      CMD=("$HARNESS" run --model "$m" --concurrency "$R" --duration "${d}s" --port "$PORT" --out "$tdir/out")
      DESC="$m,c$R,${d}s"
      EXPECT=$((d * 1000 + 800))
      ;;
    sweep)
      SWEEP=1
      local reps models plots rate=0 migr=0
      rnd 2
      reps=$((R + 1))
      rnd 4
      ((R == 0)) && rate=1
      rnd 5
      ((R == 0)) && migr=1
      pick "${MODELS[@]}"
      models="\"$R\""
      local nm=1
      if ((rate == 0)); then
        pick "${MODELS[@]}"
        models+=", \"$R\""
        nm=2
      fi
      rnd 2
      plots=$R
      if ((migr == 1)); then
        models='"reuseport"'
        nm=1
        reps=2
      fi
      local runs=$((nm * reps))
      ((runs >= 2)) || { reps=2; runs=$((nm * reps)); }
      {
        echo 'name = "chaos"'
        echo 'description = "chaos.sh trial"'
        echo "seed = $((SEED + i))"
        echo "repetitions = $reps"
        echo "model = [$models]"
        echo 'workers = 2'
        if ((rate == 1)); then
          echo 'rate = "50%"'
          echo 'max_inflight = 64'
        else
          echo 'concurrency = 8'
        fi
        echo 'duration = "1s"'
        echo 'timeout = "2s"'
      } >"$tdir/scenario.toml"
      DESC="$runs runs of [${models//\"/}]"
      EXPECT=$((runs * 1050 + 100))
      if ((rate == 1)); then DESC+=",50% of capacity"; EXPECT=$((EXPECT + nm * 2100)); fi
      if ((migr == 1)); then
        local want=true
        [[ "$SYSCTL_NOW" == 1 ]] && want=false
        if [[ $IS_ROOT == 1 ]]; then
          printf 'tcp_migrate_req = %s\nrolling_restart = "300ms"\n' "$want" >>"$tdir/scenario.toml"
          DESC+=",migrate=$want"
          MIGRATE=1
        else
          NOTE="not root: sweep without tcp_migrate_req"
        fi
      fi
      CMD=("$HARNESS" sweep "$tdir/scenario.toml" --out "$tdir/out")
      if ((plots == 0)); then CMD+=(--no-plots); else DESC+=",plots"; EXPECT=$((EXPECT + 300)); fi
      ;;
    external)
      SWEEP=1
      rnd 2
      plots=$R
      CMD=("$HARNESS" external nginx-reuseport --connections 3000 --out "$tdir/out")
      DESC="nginx-reuseport+reuseport,3000"
      EXPECT=1800
      if ((plots == 0)); then CMD+=(--no-plots); else DESC+=",plots"; EXPECT=$((EXPECT + 300)); fi
      if [[ $HAVE_NGINX == 0 && $IS_ROOT == 0 ]]; then NOTE="nginx missing and not root: expect the run to fail"; fi
      ;;
  esac
  KIND=$k
}

fail() { PROBLEMS+=("$1"); }

trial() {
  local i=$1
  local tdir tag
  tdir=$OUT/$(printf 't%02d' "$i")
  rm -rf "$tdir"
  mkdir -p "$tdir"
  tag="chaos-$$-$SEED-$i"
  read_sysctl
  local before=$SYSCTL_NOW
  plan "$i" "$tdir"
  local sig target delay late double gap
  pick INT TERM KILL
  sig=$R
  rnd 2
  target=pid
  [[ $sig != KILL && $R == 1 ]] && target=group
  # Now and then the same signal again, GAP ms later: the harness then ends
  # at once, which must leave no process either (README "Interrupted").
  rnd 6
  double=0
  [[ $sig != KILL && $R == 0 ]] && double=1
  rnd 80
  gap=$R
  rnd 2
  late=$R
  # The chart phase is the last few hundred ms: aim there half the time.
  if [[ "$DESC" == *plots* && $late == 1 ]]; then
    rnd 700
    delay=$((EXPECT - 700 + R))
  else
    rnd $((EXPECT + 1))
    delay=$R
  fi
  local sigdesc=$sig
  [[ $double == 1 ]] && sigdesc+="*2(+${gap})"
  sigdesc+=">$target"
  if [[ $DRY == 1 ]]; then
    printf 'trial %2d/%d %-8s %-14s at %5d ms of ~%5d: %s\n' "$i" "$N" "$KIND" "$sigdesc" "$delay" "$EXPECT" "$DESC${NOTE:+ [$NOTE]}"
    rm -rf "$tdir"
    return 0
  fi
  printf '%q ' "${CMD[@]}" >"$tdir/cmd"
  local kt="" again=""
  [[ $target == group ]] && kt="-- -"
  [[ $double == 1 ]] && again=" sleep $(printf '0.%03d' "$gap"); kill -$sig $kt\$!;"
  echo "cd $(printf %q "$tdir") && rm -rf out && { env --default-signal=INT,TERM setsid $(<"$tdir/cmd")& sleep $(printf '%d.%03d' $((delay / 1000)) $((delay % 1000))); kill -$sig $kt\$!;$again wait \$!; echo exit \$?; }" >"$tdir/repro"

  PROBLEMS=()
  local known="" info=()
  PORTS=()
  [[ -n "$PORT" ]] && PORTS[$PORT]=1
  [[ $MIGRATE == 1 ]] && CUR_SYSCTL=$before

  local t0 sent=0 sent_at=0 early=0 hard=0
  start "$tag" "$tdir/harness.log" "$tdir" "${CMD[@]}"
  clock
  t0=$NOW
  watch "$PID" "$tdir/ports"
  # Until the signal is due.
  while :; do
    pstate "$PID"
    clock
    if [[ "$PSTATE" == Z || "$PSTATE" == X || "$PSTATE" == gone ]]; then early=1; break; fi
    ((NOW - t0 < delay)) || break
    snooze 0.005
  done
  if [[ $early == 0 ]]; then
    pstate "$PID"
    if [[ "$PSTATE" == Z || "$PSTATE" == X || "$PSTATE" == gone ]]; then
      early=1
    else
      send "$sig" "$target"
      clock
      sent=1
      sent_at=$NOW
      [[ $sig == KILL ]] && hard=1
      if [[ $double == 1 ]]; then
        # The second one, unless the first already ended it.
        while :; do
          pstate "$PID"
          clock
          [[ "$PSTATE" == Z || "$PSTATE" == X || "$PSTATE" == gone ]] && break
          if ((NOW - sent_at >= gap)); then
            send "$sig" "$target"
            hard=1
            break
          fi
          snooze 0.002
        done
        [[ $hard == 1 ]] || sigdesc=${sigdesc/\*2(+${gap})/*2(+${gap}: not sent)}
      fi
    fi
  fi
  local sig_ms=$((NOW - t0))
  await "$EXIT_BOUND"
  unwatch "$tdir/ports"
  local stop=$((EXIT_SEEN - sent_at))
  local outcome
  if [[ $EXITED == 0 ]]; then
    fail "did not exit within $((EXIT_BOUND / 1000)) s of the signal (killed with SIGKILL)"
    outcome="hung"
  elif [[ $sent == 0 ]]; then
    outcome="exited $RC at $((EXIT_SEEN - t0)) ms, before the signal: not sent"
    [[ $RC == 0 || $RC == 1 ]] || fail "exited $RC on its own (before the signal was due)"
    [[ $RC == 1 ]] && info+=("the run failed on its own: $(tail -n 3 "$tdir/harness.log" | tr '\n' ' ' | cut -c1-300)")
  else
    local want
    case $sig in INT) want=130 ;; TERM) want=143 ;; KILL) want=137 ;; esac
    outcome="sent at $sig_ms ms, exit $RC after $stop ms"
    if [[ $sig == KILL && ($RC == 0 || $RC == 1) ]]; then
      # SIGKILL cannot be caught: the harness was already on its way out
      # (a race with the check above).
      outcome+=" (it was already exiting)"
    elif [[ $RC != "$want" ]]; then
      fail "exit $RC, expected $want (signal sent at $sig_ms ms while the harness was running; $(grep -v '^sweep: run [0-9]' "$tdir/harness.log" | tail -n 3 | tr '\n' ' ' | cut -c1-400))"
    fi
    if [[ $hard == 0 ]] && ((stop > STOP_LIMIT)); then
      fail "took $stop ms to stop after SIG$sig (limit $STOP_LIMIT)"
    fi
  fi

  # Processes and listeners.
  leftovers "$tag" "${!PORTS[@]}"
  [[ -n "$LEFT" ]] && fail "left behind: $LEFT"
  info+=("ports ${!PORTS[*]}")

  # Files.
  local lines=() l ntmp=0 ncsv=0
  if [[ -d "$tdir/out" ]]; then
    mapfile -t lines < <(check_files parse "$tdir/out")
    for l in "${lines[@]}"; do
      case $l in
        BAD*) fail "out/${l#BAD }" ;;
        TMP*) ntmp=$((ntmp + 1)); info+=("temporary file ${l#TMP }") ;;
        "INFO csv"*) ncsv=${l#INFO csv } ;;
      esac
    done
    if [[ $sent == 1 && $hard == 0 && $ntmp -gt 0 ]]; then
      fail "$ntmp temporary file(s) left after a caught SIG$sig"
    fi
    if [[ $KIND == run || $KIND == migrate || $KIND == server ]] && [[ -f "$tdir/out/summary.csv" ]]; then
      local complete
      complete=$(awk -F, 'NR == 1 { for (j = 1; j <= NF; j++) if ($j == "complete") c = j; next } c { print $c }' "$tdir/out/summary.csv")
      outcome+=", complete=${complete:-?}"
      [[ $RC == 0 && $complete != true ]] && fail "exit 0 but summary.csv says complete=$complete"
    fi
  fi
  outcome+=", $ncsv CSVs"
  [[ $ntmp -gt 0 ]] && outcome+=", $ntmp .tmp"
  local tmpleft
  tmpleft=$(find "$tdir/tmp" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
  if [[ -n "${tmpleft// /}" ]]; then
    if [[ $hard == 1 ]]; then
      info+=("temp dir left by a SIGKILL or second signal: $tmpleft")
      outcome+=", temp dir left"
    else
      fail "temp dir(s) left in TMPDIR: $tmpleft"
    fi
  fi

  # The sysctl.
  # A trial that does not set it cannot have changed it: then another
  # process did (tests of --tcp-migrate-req elsewhere on the machine), which
  # is said on the trial's line but is no failure of this trial; nor is a
  # change while such a process was seen running. Either way the script
  # leaves the value to that process.
  read_sysctl
  if [[ "$SYSCTL_NOW" != "$before" ]]; then
    if [[ $MIGRATE == 0 ]]; then
      outcome+=", tcp_migrate_req changed by another process ($before -> $SYSCTL_NOW)"
      before=$SYSCTL_NOW # what the resume must leave
    elif [[ $hard == 0 && -n "$FOREIGN" ]]; then
      outcome+=", tcp_migrate_req $before -> $SYSCTL_NOW while another process that sets it ran (${FOREIGN%;}): not counted"
      before=$SYSCTL_NOW
    else
      if [[ $hard == 1 ]]; then
        known="net.ipv4.tcp_migrate_req left at $SYSCTL_NOW (was $before) by a run ended at once (SIGKILL or a second signal); restored by chaos.sh"
      else
        fail "net.ipv4.tcp_migrate_req is $SYSCTL_NOW after the trial, was $before"
      fi
      echo "$before" >"$SYSCTL" || true
    fi
  fi

  # Resume a cut sweep.
  if [[ $SWEEP == 1 ]]; then
    if [[ -f "$tdir/out/sweep.json" ]]; then
      PORTS=()
      start "$tag-resume" "$tdir/resume.log" "$tdir" "$HARNESS" sweep --resume "$tdir/out" --quiet --no-plots
      watch "$PID" "$tdir/resume-ports"
      await "$RESUME_BOUND"
      unwatch "$tdir/resume-ports"
      if [[ $EXITED == 0 ]]; then
        fail "resume did not finish within $((RESUME_BOUND / 1000)) s"
      elif [[ $RC != 0 ]]; then
        fail "resume exited $RC: $(tail -n 3 "$tdir/resume.log" | tr '\n' ' ' | cut -c1-400)"
      fi
      leftovers "$tag-resume" "${!PORTS[@]}"
      [[ -n "$LEFT" ]] && fail "resume left behind: $LEFT"
      mapfile -t lines < <(check_files resume "$tdir/out")
      local planned="?" done_="?"
      for l in "${lines[@]}"; do
        case $l in
          BAD*) fail "after the resume: ${l#BAD }" ;;
          TMP*) fail "after the resume a temporary file is left: ${l#TMP }" ;;
          "INFO planned"*) read -r _ _ planned _ done_ <<<"$l" ;;
        esac
      done
      outcome+=", resumed $done_/$planned"
      read_sysctl
      if [[ "$SYSCTL_NOW" != "$before" ]]; then
        if [[ $MIGRATE == 1 && -n "$FOREIGN" ]]; then
          outcome+=", tcp_migrate_req $before -> $SYSCTL_NOW during the resume while another process that sets it ran (${FOREIGN%;}): not counted"
        elif [[ $MIGRATE == 1 ]]; then
          fail "net.ipv4.tcp_migrate_req is $SYSCTL_NOW after the resume, was $before"
          echo "$before" >"$SYSCTL" || true
        else
          outcome+=", tcp_migrate_req changed by another process during the resume ($before -> $SYSCTL_NOW)"
        fi
      fi
    elif [[ -e "$tdir/out/runs.csv" ]]; then
      fail "runs.csv without sweep.json: cannot resume"
    elif [[ $sent == 1 ]]; then
      outcome+=", cut before sweep.json (nothing to resume)"
    else
      fail "the sweep exited $RC without a sweep.json"
    fi
  fi

  local head
  head=$(printf 'trial %2d/%d %-8s %-14s at %5d ms of ~%5d:' "$i" "$N" "$KIND" "$sigdesc" "$delay" "$EXPECT")
  if ((${#PROBLEMS[@]} > 0)); then
    FAILS=$((FAILS + 1))
    echo "$head FAIL ($outcome)"
    echo "    what: $DESC${NOTE:+ [$NOTE]}"
    local p
    for p in "${PROBLEMS[@]}"; do echo "    - $p"; done
    for p in "${info[@]}"; do echo "    info: $p"; done
    echo "    repro: $(<"$tdir/repro")"
    echo "    files: $tdir"
  elif [[ -n "$known" ]]; then
    KNOWN=$((KNOWN + 1))
    echo "$head KNOWN ($outcome)"
    echo "    what: $DESC${NOTE:+ [$NOTE]}"
    echo "    - $known"
  else
    echo "$head ok ($outcome) [$DESC${NOTE:+; $NOTE}]"
    rm -rf "$tdir/tmp"
  fi
  CUR_SYSCTL=""
  return 0
}

# ---------------------------------------------------------------- main

# (A function called on the last line: bash has read the whole file before
# it runs, so an edit to the script meanwhile cannot derail it.)
main() {
  RANDOM=$SEED
  clock
  T_START=$NOW
  echo "chaos: $N trials, seed $SEED, harness $HARNESS, out $OUT$([[ $IS_ROOT == 1 ]] || echo ', not root: no --tcp-migrate-req trials')"
  for ((t = 1; t <= N; t++)); do
    trial "$t"
  done
  clock
  summary="chaos: $N trials, $FAILS failures"
  ((KNOWN > 0)) && summary+=", $KNOWN known (net.ipv4.tcp_migrate_req left changed by a run ended at once, restored)"
  [[ $DRY == 1 ]] && summary="chaos: $N trials drawn (CHAOS_DRY: nothing ran)"
  echo "$summary ($(((NOW - T_START) / 1000)) s)"
  if ((FAILS > 0)); then
    echo "chaos: outputs kept in $OUT"
    exit 1
  fi
  if [[ $KEEP_OUT == 0 ]]; then rm -rf "$OUT"; fi
  exit 0
}

main
