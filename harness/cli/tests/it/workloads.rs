//! Realistic workloads: service times, a slow worker, a stalled worker, and
//! the kernel knobs (backlog, pinning), end to end through the binary.

use crate::common::{col, num, read_csv, run, serial, show, summary};

#[test]
fn a_stall_hurts_reuseport_but_not_a_shared_queue() {
    let _g = serial();
    // (overall p99, worker 0's p99, the stall's length), all in us.
    let mut got = Vec::new();
    for model in ["reuseport", "shared-blocking"] {
        // 1000 arrivals/s for 3 s; worker 0 stops for 1 s at 1 s. (A long
        // stall: what it does must stand well clear of what this shared
        // machine does by itself; it was seen to hold 1% of the connections
        // of workers that never stalled up by 150 ms.)
        let (o, dir) = run(
            &format!("stall-{model}"),
            &[
                "--model",
                model,
                "--workers",
                "4",
                "--rate",
                "1000",
                "--arrivals",
                "constant",
                "--duration",
                "3s",
                "--stall-worker",
                "0:1s:1s",
            ],
        );
        assert!(o.status.success(), "{model}: {}", show(&o));
        let w0 = &read_csv(&dir.join("workers.csv"))[0];
        let (from, to) = (num(w0, "stall_from_ms"), num(w0, "stall_to_ms"));
        // The stall began when it was due (at the first connection worker 0
        // took from 1 s on) and its sleep ran to the planned end (a sleep
        // never ends early), however late the scheduler let it start.
        assert!(
            (1000.0..2000.0).contains(&from) && to >= 2000.0,
            "{model}: stall {from}..{to} ms"
        );
        got.push((
            num(&summary(&dir), "total_p99_us"),
            num(w0, "p99_us"),
            (to - from) * 1000.0,
        ));
    }
    let ((_, rp_w0, rp_stall), (sb_all, sb_w0, sb_stall)) = (got[0], got[1]);
    // reuseport keeps hashing a quarter of the arrivals to the stalled
    // worker's own queue (about 250, a third of its connections), and each
    // waits there until the stall ends: well over 1% of worker 0's
    // connections wait more than half the stall, whatever the scheduler
    // does (it can only make them wait longer). Worker 0's own p99, not the
    // overall one, which rests on how many connections the hash happens to
    // give socket 0.
    assert!(
        rp_w0 >= rp_stall / 2.0,
        "reuseport: worker 0's p99 {rp_w0} us did not rise towards the {rp_stall} us stall"
    );
    // A shared queue hands the arrivals to the other workers: only the one
    // connection worker 0 held waits out the stall, far under 1% of the
    // connections, overall or worker 0's own. (Upper bounds on latency:
    // they need the machine not to hold 1% of the connections up for half
    // the stall, 500 ms, by itself; the worst seen here, one core kept busy
    // and others' builds running, was 160 ms.)
    assert!(
        sb_all < sb_stall / 2.0 && sb_w0 < sb_stall / 2.0,
        "shared-blocking: p99 {sb_all} us (worker 0: {sb_w0} us) rose with the {sb_stall} us stall"
    );
}

#[test]
fn service_time_shows_in_time_to_first_byte_and_is_recorded() {
    let _g = serial();
    let (o, dir) = run(
        "service",
        &[
            "--model",
            "shared-blocking",
            "--concurrency",
            "4",
            "--connections",
            "400",
            "--service",
            "sleep:2ms",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    assert_eq!(s["service"], "sleep:2000us");
    assert_eq!((num(&s, "completed"), num(&s, "errors")), (400.0, 0.0));
    // Time to first byte runs from the connect start (a connection's first
    // request), so for every connection ttfb >= connect + the 2 ms the worker
    // sleeps between the handshake and its answer: the same holds for every
    // quantile, whatever the scheduler adds. (2 us of slack: the histograms
    // keep 3 significant digits.)
    assert!(num(&s, "ttfb_p50_us") >= 2000.0, "ttfb p50 {}", s["ttfb_p50_us"]);
    for q in ["p50", "p99"] {
        let (ttfb, connect) = (num(&s, &format!("ttfb_{q}_us")), num(&s, &format!("connect_{q}_us")));
        assert!(
            ttfb + 2.0 >= connect + 2000.0,
            "{q}: ttfb {ttfb} us is not connect {connect} us + the 2 ms service"
        );
    }
}

#[test]
fn a_slow_worker_gets_less_from_a_shared_queue_than_from_round_robin() {
    let _g = serial();
    let mut slow_share = Vec::new();
    for model in ["shared-blocking", "dispatch-rr"] {
        let (o, dir) = run(
            &format!("slow-{model}"),
            &[
                "--model",
                model,
                "--workers",
                "4",
                "--concurrency",
                "16",
                "--connections",
                "2000",
                "--service",
                "sleep:1ms",
                "--slow-worker",
                "0:10",
            ],
        );
        assert!(o.status.success(), "{model}: {}", show(&o));
        let s = summary(&dir);
        assert_eq!(s["slow_worker"], "0");
        let rows = read_csv(&dir.join("workers.csv"));
        assert_eq!(num(&rows[0], "slowdown"), 10.0);
        assert_eq!(num(&rows[1], "slowdown"), 1.0);
        assert_eq!(col(&rows, "accepted").iter().sum::<u64>(), 2000);
        slow_share.push(num(&s, "slow_share"));
    }
    // Whoever is free takes the next connection from a shared queue, so the
    // slow worker gets far less than 1/4 (about 1/31 by capacity); round
    // robin gives it 1/4 exactly, whatever the timing. (needs a quiet
    // machine, for the shared queue only: the slow worker's share follows its
    // sleeps and the others' speed; 0.10 held with one core kept busy.)
    assert!(
        slow_share[0] < 0.10,
        "shared-blocking gave the slow worker {}",
        slow_share[0]
    );
    assert!(
        (slow_share[1] - 0.25).abs() < 0.01,
        "dispatch-rr gave the slow worker {}",
        slow_share[1]
    );
}

#[test]
fn backlog_and_pinning_are_applied_and_recorded() {
    let _g = serial();
    let (o, dir) = run(
        "knobs",
        &[
            "--model",
            "reuseport",
            "--connections",
            "2000",
            "--backlog",
            "64",
            "--pin-workers",
            "--pin-loadgen",
            "0",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(summary(&dir)["backlog"], "64");
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    assert!(meta.contains("\"pin_workers\": true"), "{meta}");
    assert!(meta.contains("\"pin_loadgen\": [\n      0\n    ]"), "{meta}");
}

/// A 4-worker shared-epoll fleet at concurrency 32 with 5 ms sleeps and `k`
/// connections per worker; checks conservation and returns the run's
/// summary and directory.
fn sleeping_fleet(k: &str) -> (std::collections::HashMap<String, String>, std::path::PathBuf) {
    let (o, dir) = run(
        &format!("worker-concurrency-{k}"),
        &[
            "--model",
            "shared-epoll",
            "--workers",
            "4",
            "--concurrency",
            "32",
            "--connections",
            "2000",
            "--service",
            "sleep:5ms",
            "--worker-concurrency",
            k,
        ],
    );
    assert!(o.status.success(), "K={k}: {}", show(&o));
    let s = summary(&dir);
    assert_eq!(s["conserved"], "true", "K={k}");
    assert_eq!(s["worker_concurrency"], k);
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(col(&rows, "accepted").iter().sum::<u64>(), 2000, "K={k}");
    (s, dir)
}

#[test]
fn an_event_loop_worker_overlaps_its_sleeps() {
    let _g = serial();
    let (one, one_dir) = sleeping_fleet("1");
    let (eight, dir) = sleeping_fleet("8");
    let (r1, r8) = (num(&one, "conn_per_s"), num(&eight, "conn_per_s"));
    eprintln!("shared-epoll, sleep:5ms, 4 workers, concurrency 32: K=1 {r1} conn/s, K=8 {r8} conn/s");
    // One at a time, each of the 4 workers sleeps 5 ms per connection, all
    // inside the run's measured duration: at most 4 / 5 ms = 800 conn/s,
    // however the scheduler behaves (it can only make the sleeps longer).
    let ceiling =
        |s: &std::collections::HashMap<String, String>, k: f64| 4.0 * k * (num(s, "duration_s") + 0.0001) / 0.005;
    assert!(
        num(&one, "completed") <= ceiling(&one, 1.0),
        "K=1 completed {} in {} s: more than 4 sequential workers sleeping 5 ms can",
        one["completed"],
        one["duration_s"]
    );
    let active = |d: &std::path::Path| col(&read_csv(&d.join("timeseries.csv")), "active");
    assert!(active(&one_dir).iter().all(|a| *a <= 1), "K=1: a worker had two open");
    // With 8 at a time the sleeps overlap: a worker is seen with more than
    // one connection open, never more than 8, and the fleet beats what any
    // one-at-a-time fleet can do. (This last is a throughput claim: it needs
    // a machine that serves over 800 conn/s with 5 ms sleeps; this one does
    // several thousand, also with one core kept busy.)
    let most = active(&dir).into_iter().max().unwrap();
    assert!(most > 1, "no worker ever had more than one connection open");
    assert!(most <= 8, "a worker had {most} open with K=8");
    assert!(
        num(&eight, "completed") <= ceiling(&eight, 8.0),
        "K=8: more than 32 overlapping 5 ms sleeps can"
    );
    assert!(
        r8 > 800.0,
        "K=8 {r8} conn/s is no better than one-at-a-time workers can do (800), K=1 {r1}"
    );
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    assert!(meta.contains("\"worker_concurrency\": 8"), "{meta}");
}

#[test]
fn dispatch_least_with_event_loops_still_avoids_a_slow_worker() {
    let _g = serial();
    let (o, dir) = run(
        "worker-concurrency-least",
        &[
            "--model",
            "dispatch-least",
            "--workers",
            "4",
            "--concurrency",
            "32",
            "--connections",
            "2000",
            "--service",
            "sleep:2ms",
            "--slow-worker",
            "0:10",
            "--worker-concurrency",
            "4",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    assert_eq!(s["conserved"], "true");
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(col(&rows, "accepted").iter().sum::<u64>(), 2000);
    // needs a quiet machine: the slow worker keeps up to 4 connections for
    // 20 ms each where the others finish theirs in 2 ms, so it is rarely the
    // least loaded; under 1/4 held with one core kept busy.
    let share = num(&s, "slow_share");
    assert!(share < 0.25, "the slow worker got {share}, not less than its fair 1/4");
}

#[test]
fn worker_concurrency_is_refused_where_workers_block_in_accept() {
    let _g = serial();
    let (o, _) = run(
        "worker-concurrency-refused",
        &["--model", "shared-blocking", "--worker-concurrency", "4"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("shared-blocking") && err.contains("--worker-concurrency 4"),
        "{err}"
    );
}

#[test]
fn thread_fleets_conserve_under_every_model_in_one_process() {
    let _g = serial();
    let models = [
        "shared-blocking",
        "shared-epoll",
        "epoll-exclusive",
        "reuseport",
        "dispatch-rr",
        "dispatch-least",
        "accept-mutex",
        "reuseport-cbpf",
        "io-uring",
    ];
    for model in models {
        let (o, dir) = run(
            &format!("threads-{model}"),
            &[
                "--model",
                model,
                "--fleet",
                "threads",
                "--concurrency",
                "16",
                "--connections",
                "4000",
            ],
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        if model == "io-uring" && !crate::common::needs(!stderr.contains("io_uring is not available"), "io_uring") {
            continue;
        }
        assert!(o.status.success(), "{model}: {}", show(&o));
        let s = summary(&dir);
        assert_eq!(
            (s["conserved"].as_str(), s["fleet"].as_str()),
            ("true", "threads"),
            "{model}"
        );
        let rows = read_csv(&dir.join("workers.csv"));
        let process = col(&rows, "process");
        assert!(
            process.iter().all(|p| *p == process[0]),
            "{model}: workers in several processes {process:?}"
        );
        let mut tids = col(&rows, "pid");
        tids.sort_unstable();
        tids.dedup();
        assert_eq!(tids.len(), 4, "{model}: worker threads not told apart");
        assert!(!tids.contains(&process[0]), "{model}: a worker is the process itself");
    }
    // A process fleet: each worker is its own process.
    let (o, dir) = run("processes", &["--model", "reuseport", "--connections", "2000"]);
    assert!(o.status.success(), "{}", show(&o));
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(col(&rows, "process"), col(&rows, "pid"));
}

#[test]
fn a_thread_fleet_dies_with_a_killed_harness() {
    use std::time::Duration;
    let _g = serial();
    let out = crate::common::scratch("threads-kill");
    let mut child = crate::common::harness()
        .args([
            "run",
            "--model",
            "shared-blocking",
            "--fleet",
            "threads",
            "--duration",
            "30s",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while the load runs: the fleet process is forked and the load
    // generator's threads exist (a condition, not a guessed time).
    let pid = child.id();
    let mut fleet = Vec::new();
    let going = crate::common::wait_until(Duration::from_secs(30), || {
        fleet = crate::common::children(pid);
        !fleet.is_empty() && crate::common::load_running(pid)
    });
    assert!(going, "the thread fleet or its load did not start: {fleet:?}");
    assert_eq!(fleet.len(), 1, "a thread fleet is one process: {fleet:?}");
    assert!(
        crate::common::threads(fleet[0]) >= 4,
        "the fleet process runs its 4 workers as threads"
    );
    sys::kill(pid as i32, libc::SIGKILL).expect("kill(2)");
    let _ = child.wait();
    // Liveness bound: PR_SET_PDEATHSIG kills the fleet at once.
    crate::common::wait_until(Duration::from_secs(10), || !crate::common::alive(fleet[0]));
    assert!(
        !crate::common::alive(fleet[0]),
        "the fleet process outlived the harness"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn one_epoll_set_shared_by_threads_behaves_unlike_one_per_worker() {
    let _g = serial();
    let serial_run = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "--model",
            "epoll-exclusive",
            "--fleet",
            "threads",
            "--concurrency",
            "1",
            "--gap",
            "200us",
            "--connections",
            "1000",
        ];
        args.extend_from_slice(extra);
        let (o, dir) = run(name, &args);
        assert!(o.status.success(), "{name}: {}", show(&o));
        read_csv(&dir.join("workers.csv"))
    };
    // needs a quiet machine (both halves): which thread a serial client's
    // connection wakes depends on who is back in epoll_wait; the 90% and 80%
    // bounds held with one core kept busy.
    // One set per thread, as with processes: EPOLLEXCLUSIVE keeps waking the
    // same waiter, which takes (nearly) everything.
    let own = serial_run("own-sets", &[]);
    assert_eq!(col(&own, "epoll_owner"), vec![0, 1, 2, 3]);
    assert!(
        *col(&own, "accepted").iter().max().unwrap() >= 900,
        "{:?}",
        col(&own, "accepted")
    );
    // One set for all threads: the set's own wait queue picks the thread, and
    // the favourite is gone.
    let shared = serial_run("shared-set", &["--shared-epoll-set"]);
    assert_eq!(
        col(&shared, "epoll_owner"),
        vec![4, 4, 4, 4],
        "the set is not the shared one"
    );
    let accepted = col(&shared, "accepted");
    assert!(
        *accepted.iter().max().unwrap() <= 800,
        "a shared set still favours one thread: {accepted:?}"
    );
    // Only where it makes sense.
    let o = crate::common::harness()
        .args([
            "run",
            "--model",
            "reuseport",
            "--fleet",
            "threads",
            "--shared-epoll-set",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}
