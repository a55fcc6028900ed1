//! Realistic workloads: service times, a slow worker, a stalled worker, and
//! the kernel knobs (backlog, pinning), end to end through the binary.

mod common;

use common::{col, num, read_csv, run, serial, show, summary};

#[test]
fn a_stall_hurts_reuseport_but_not_a_shared_queue() {
    let _g = serial();
    let mut p99 = Vec::new();
    for model in ["reuseport", "shared-blocking"] {
        // 1000 arrivals/s for 3 s; worker 0 stops for 300 ms at 1 s.
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
                "0:1s:300ms",
            ],
        );
        assert!(o.status.success(), "{model}: {}", show(&o));
        p99.push(num(&summary(&dir), "total_p99_us"));
    }
    // reuseport keeps hashing a quarter of the arrivals to the stalled
    // worker's own queue: 2.5% of all connections wait up to 300 ms.
    assert!(
        p99[0] >= 120_000.0,
        "reuseport p99 {} us did not rise towards the stall",
        p99[0]
    );
    // A shared queue hands them to the other workers.
    assert!(
        p99[1] <= 30_000.0,
        "shared-blocking p99 {} us rose with the stall",
        p99[1]
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
    assert!(num(&s, "ttfb_p50_us") >= 2000.0, "ttfb p50 {}", s["ttfb_p50_us"]);
    assert!(num(&s, "connect_p50_us") < 2000.0);
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
    // slow worker gets far less than 1/4; round robin gives it 1/4 exactly.
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

/// conn/s of a 4-worker shared-epoll fleet at concurrency 32 with 5 ms sleeps
/// and `k` connections per worker; also checks conservation and returns the
/// run's directory.
fn sleeping_fleet(k: &str) -> (f64, std::path::PathBuf) {
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
    (num(&s, "conn_per_s"), dir)
}

#[test]
fn an_event_loop_worker_overlaps_its_sleeps() {
    let _g = serial();
    let (one, _) = sleeping_fleet("1");
    let (eight, dir) = sleeping_fleet("8");
    eprintln!("shared-epoll, sleep:5ms, 4 workers, concurrency 32: K=1 {one} conn/s, K=8 {eight} conn/s");
    assert!(eight >= 3.0 * one, "K=8 {eight} conn/s is not 3x K=1 {one} conn/s");
    let most = col(&read_csv(&dir.join("timeseries.csv")), "active")
        .into_iter()
        .max()
        .unwrap();
    assert!(most > 1, "no worker ever had more than one connection open");
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
        if model == "io-uring" && stderr.contains("io_uring is not available") {
            eprintln!("skipping io-uring: {stderr}");
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
    use std::time::{Duration, Instant};
    let _g = serial();
    let out = common::scratch("threads-kill");
    let mut child = common::harness()
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
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fleet = Vec::new();
    while fleet.is_empty() && Instant::now() < deadline {
        fleet = common::children(child.id());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fleet.len(), 1, "a thread fleet is one process: {fleet:?}");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(2);
    while common::alive(fleet[0]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!common::alive(fleet[0]), "the fleet process outlived the harness");
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
    let o = common::harness()
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
