//! End-to-end tests of the `harness` binary: each accept model checked by its
//! kernel signature, conservation, teardown, and usage errors.
//!
//! Fleets are driven through the binary (it forks while single-threaded; this
//! test process is not). Tests that read a distribution must not run beside
//! each other on two cores, so every test here takes one lock.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{
    alive, children, col, harness, load_running, read_csv, run, scratch, serial, show, wait_until, wait_within,
};

/// One client in series, 200 us between connections: the load at which the
/// models' signatures differ most (DESIGN.md).
fn serial_run(model: &str, connections: u32) -> Vec<HashMap<String, String>> {
    let n = connections.to_string();
    let (o, dir) = run(
        &format!("serial-{model}"),
        &[
            "--model",
            model,
            "--workers",
            "4",
            "--concurrency",
            "1",
            "--gap",
            "200us",
            "--connections",
            &n,
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(rows.len(), 4);
    assert_eq!(
        col(&rows, "accepted").iter().sum::<u64>(),
        connections as u64,
        "{}",
        show(&o)
    );
    rows
}

#[test]
fn dispatch_rr_splits_exactly_evenly() {
    let _g = serial();
    let (o, dir) = run(
        "rr",
        &[
            "--model",
            "dispatch-rr",
            "--workers",
            "4",
            "--concurrency",
            "16",
            "--connections",
            "4001",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let rows = read_csv(&dir.join("workers.csv"));
    let accepted = col(&rows, "accepted");
    let mean = 4001.0 / 4.0;
    for a in &accepted {
        assert!(
            (*a as f64 - mean).abs() <= 1.0,
            "dispatch-rr is not exact: {accepted:?}"
        );
    }
    assert_eq!(
        col(&rows, "dispatched"),
        accepted,
        "the dispatcher's counts differ from the workers'"
    );
}

#[test]
fn shared_blocking_rotates_with_a_serial_client() {
    let _g = serial();
    let rows = serial_run("shared-blocking", 800);
    let accepted = col(&rows, "accepted");
    // needs a quiet machine: FIFO wakeups give 200 each only while every
    // worker is back in accept(2) before its turn comes round again (three
    // connections, about 1 ms, later). A worker the scheduler holds up
    // longer loses turns, and the others keep rotating among themselves
    // (measured on a loaded machine: 191 / 203 / 203 / 203). So: the three
    // busiest are within 2 of each other, whatever one late worker lost,
    // where a 4-tuple hash would spread them about +-12 (one sd).
    let mut sorted = accepted.clone();
    sorted.sort_unstable();
    assert!(sorted[3] - sorted[1] <= 2, "no rotation: {accepted:?}");
    assert_eq!(col(&rows, "spurious_wakeups").iter().sum::<u64>(), 0);
}

#[test]
fn epoll_exclusive_favours_one_worker_with_a_serial_client() {
    let _g = serial();
    let rows = serial_run("epoll-exclusive", 1000);
    let accepted = col(&rows, "accepted");
    let max = *accepted.iter().max().unwrap();
    // needs a quiet machine: the favourite (the first waiter, never requeued)
    // takes a connection only if it is back in epoll_wait when it arrives;
    // 10% of misses is a margin that held with one core kept busy.
    assert!(max >= 900, "no worker got 90%: {accepted:?}");
    // Its own epoll set per worker: the kernel shows each worker's own tag.
    assert_eq!(col(&rows, "epoll_owner"), vec![0, 1, 2, 3]);
    let inodes = col(&rows, "listen_inode");
    assert!(inodes[0] > 0 && inodes.iter().all(|i| *i == inodes[0]), "{inodes:?}");
}

#[test]
fn shared_epoll_herds_with_separate_epoll_sets_on_one_socket() {
    let _g = serial();
    let rows = serial_run("shared-epoll", 1000);
    // Each worker's epoll set holds the listener under its own index: no set is shared.
    assert_eq!(col(&rows, "epoll_owner"), vec![0, 1, 2, 3]);
    // One listening socket for all.
    let inodes = col(&rows, "listen_inode");
    assert!(inodes[0] > 0 && inodes.iter().all(|i| *i == inodes[0]), "{inodes:?}");
    // The herd: every connection wakes all four level-triggered sets; the
    // losers mostly go back to sleep inside epoll_wait (so accept rarely sees
    // EAGAIN), but each wakeup costs a context switch.
    // needs a quiet machine: a worker that is not back in epoll_wait when a
    // connection comes is not woken by it (4.65 per connection here, 2.5
    // asserted, which held with one core kept busy).
    let switches: u64 = col(&rows, "voluntary_switches").iter().sum();
    assert!(
        switches >= 2500,
        "no herd: {switches} context switches for 1000 connections"
    );
}

#[test]
fn epoll_exclusive_wakes_one_worker_per_connection() {
    let _g = serial();
    let rows = serial_run("epoll-exclusive", 1000);
    // Voluntary switches only (a busy machine adds involuntary ones): each
    // connection wakes one waiter, 1.03 per connection here.
    let switches: u64 = col(&rows, "voluntary_switches").iter().sum();
    assert!(
        switches <= 1500,
        "a herd under EPOLLEXCLUSIVE: {switches} context switches for 1000 connections"
    );
    // And the count is real, not a /proc read that failed into 0: a worker
    // that took connections from a serial client slept in epoll_wait
    // between them, at least once for every two it took.
    for (a, s) in col(&rows, "accepted").iter().zip(col(&rows, "voluntary_switches")) {
        assert!(s * 2 >= *a, "{a} connections but {s} voluntary context switches");
    }
    assert!(switches > 0);
}

#[test]
fn reuseport_workers_own_distinct_listening_sockets() {
    let _g = serial();
    let (o, dir) = run(
        "reuseport",
        &[
            "--model",
            "reuseport",
            "--workers",
            "4",
            "--concurrency",
            "8",
            "--connections",
            "2000",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let rows = read_csv(&dir.join("workers.csv"));
    let mut inodes = col(&rows, "listen_inode");
    assert!(inodes.iter().all(|i| *i > 0), "an inode /proc did not give: {inodes:?}");
    inodes.sort_unstable();
    inodes.dedup();
    assert_eq!(inodes.len(), 4, "workers share a listening socket: {inodes:?}");
    // And every worker got some: the kernel hashes over all four sockets.
    assert!(col(&rows, "accepted").iter().all(|a| *a > 0));
}

#[test]
fn shared_blocking_workers_share_one_listening_socket() {
    let _g = serial();
    let rows = serial_run("shared-blocking", 40);
    let inodes = col(&rows, "listen_inode");
    assert!(inodes[0] > 0 && inodes.iter().all(|i| *i == inodes[0]), "{inodes:?}");
}

#[test]
fn conservation_holds_for_every_model() {
    let _g = serial();
    for model in [
        "shared-blocking",
        "shared-epoll",
        "epoll-exclusive",
        "reuseport",
        "dispatch-rr",
    ] {
        let (o, dir) = run(
            &format!("cons-{model}"),
            &[
                "--model",
                model,
                "--workers",
                "4",
                "--concurrency",
                "32",
                "--connections",
                "20000",
            ],
        );
        crate::common::assert_conserved(&o, &dir, 20000);
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn no_worker_outlives(signal: i32, model: &str) {
    let out = scratch(&format!("kill-{signal}-{model}"));
    let mut child = harness()
        .args([
            "run",
            "--model",
            model,
            "--workers",
            "4",
            "--concurrency",
            "4",
            "--duration",
            "30s",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The signal must land while the load runs: wait until the fleet is
    // forked and the load generator's threads exist (the harness forks while
    // single-threaded), not for a time.
    let mut workers = Vec::new();
    let going = wait_until(Duration::from_secs(30), || {
        workers = children(pid);
        workers.len() >= 4 && load_running(pid)
    });
    assert!(going, "the fleet or its load did not start: {workers:?}");
    sys::kill(pid as i32, signal).expect("kill(2)");
    // Liveness bounds: a caught signal ends the 30 s run at once, and
    // workers die with the harness; the bounds only catch a hang.
    wait_within(&mut child, Duration::from_secs(60));
    wait_until(Duration::from_secs(10), || workers.iter().all(|w| !alive(*w)));
    let left: Vec<_> = workers.iter().filter(|w| alive(**w)).collect();
    assert!(
        left.is_empty(),
        "workers outlived the harness ({model}, signal {signal}): {left:?}"
    );
    if signal == libc::SIGKILL {
        assert!(!out.join("summary.csv").exists(), "a killed run left a result behind");
    } else {
        // Caught (interrupt.rs): the run ends early and says so.
        let s = read_csv(&out.join("summary.csv"));
        assert_eq!(s[0]["complete"], "false", "signal {signal}");
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn no_worker_outlives_a_sigkilled_harness() {
    let _g = serial();
    // shared-blocking: workers sit in a blocking accept(2).
    no_worker_outlives(libc::SIGKILL, "shared-blocking");
    no_worker_outlives(libc::SIGKILL, "dispatch-rr");
}

#[test]
fn no_worker_outlives_a_sigtermed_or_interrupted_harness() {
    let _g = serial();
    no_worker_outlives(libc::SIGTERM, "shared-epoll");
    no_worker_outlives(libc::SIGINT, "reuseport");
}

/// A usage error: exit code 2, one line on stderr that names `needle`.
fn usage_error(args: &[&str], needle: &str) {
    let o = harness().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr:?} does not name {needle:?}");
    assert!(o.stdout.is_empty(), "{args:?}: something ran: {}", show(&o));
}

#[test]
fn bad_input_is_a_one_line_usage_error() {
    let _g = serial();
    usage_error(&["run", "--model", "round-robin"], "round-robin");
    usage_error(&["run", "--workers", "4"], "--model");
    usage_error(&["run", "--model", "reuseport", "--workers", "four"], "four");
    usage_error(&["run", "--model", "nope"], "shared-epoll"); // lists the valid ones
    usage_error(&["run", "--model", "reuseport", "--workers", "0"], "0");
    usage_error(&["run", "--model", "reuseport", "--workers", "1025"], "1025");
    usage_error(&["run", "--model", "reuseport", "--concurrency", "0"], "--concurrency");
    usage_error(
        &["run", "--model", "reuseport", "--connections", "10", "--duration", "1s"],
        "--duration",
    );
    usage_error(&["run", "--model", "reuseport", "--duration", "soon"], "soon");
    usage_error(
        &["run", "--model", "reuseport", "--threads", "5", "--concurrency", "4"],
        "--threads 5",
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = scratch("port-taken");
    for model in ["shared-epoll", "reuseport", "dispatch-rr"] {
        usage_error(
            // In the host's namespace, where the port is taken (a run's
            // own namespace has all its ports free).
            &[
                "run",
                "--model",
                model,
                "--netns",
                "host",
                "--port",
                &port,
                "--out",
                out.to_str().unwrap(),
            ],
            &port,
        );
    }
    assert!(!out.exists(), "a refused run left its output directory behind");

    let file = scratch("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let under_file = file.join("sub");
    usage_error(
        &["run", "--model", "reuseport", "--out", under_file.to_str().unwrap()],
        under_file.to_str().unwrap(),
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn models_lists_every_model() {
    let o = harness().arg("models").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let (models, servers) = text.split_once("\n\n").expect("models, a blank line, then servers");
    let first_words = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    };
    let names = first_words(models);
    assert_eq!(
        first_words(servers)[1..],
        [
            "node-seed",
            "node-none",
            "node-rr",
            "nginx-exclusive",
            "nginx-mutex",
            "nginx-reuseport",
            "haproxy",
            "haproxy-nomq",
            "haproxy-shards",
            "gunicorn",
            "uwsgi",
            "uwsgi-thunder",
            "apache-prefork",
            "apache-event",
            "lighttpd",
            "h2o"
        ]
    );
    assert_eq!(
        names,
        [
            "shared-blocking",
            "shared-epoll",
            "epoll-exclusive",
            "reuseport",
            "dispatch-rr",
            "dispatch-least",
            "accept-mutex",
            "reuseport-cbpf",
            "reuseport-ebpf-rr",
            "reuseport-ebpf-least",
            "reuseport-ebpf-migrate",
            "io-uring"
        ]
    );
}

#[test]
fn reproduce_prints_the_seed_form_and_runs_every_model() {
    let _g = serial();
    let out = scratch("reproduce");
    let o = harness()
        .args(["reproduce", "--connections", "2000", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The seed's own form: "worker <pid> got <n> connections", one per worker.
    let counts: Vec<u64> = stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("worker ")?.strip_suffix(" connections")?;
            let (pid, n) = rest.split_once(" got ")?;
            pid.parse::<u32>().ok()?;
            n.parse().ok()
        })
        .collect();
    assert_eq!(counts.len(), 4, "{stdout}");
    assert_eq!(counts.iter().sum::<u64>(), 2000, "{stdout}");
    assert!(
        stdout.contains("(seed: 0.73)") && stdout.contains("(seed: 6.2)"),
        "{stdout}"
    );
    let models = [
        "shared-epoll",
        "shared-blocking",
        "epoll-exclusive",
        "reuseport",
        "dispatch-rr",
    ];
    for m in models {
        assert!(
            stdout.lines().any(|l| l.starts_with(m)),
            "{m} missing from the table:\n{stdout}"
        );
    }
    // The same data set as a sweep: runs in file order, one folder each.
    let runs = read_csv(&out.join("runs.csv"));
    let names: Vec<&str> = runs.iter().map(|r| r["model"].as_str()).collect();
    assert_eq!(names, models);
    for r in &runs {
        assert_eq!((r["conserved"].as_str(), r["completed"].as_str()), ("true", "2000"));
        let rows = read_csv(&out.join("runs").join(&r["run_id"]).join("workers.csv"));
        assert_eq!(col(&rows, "accepted").iter().sum::<u64>(), 2000, "{}", r["model"]);
    }
    assert_eq!(read_csv(&out.join("workers.csv")).len(), 20);
    assert_eq!(read_csv(&out.join("aggregate.csv")).len(), 5);
    assert!(out.join("sweep.json").is_file());
    let _ = std::fs::remove_dir_all(out);
}
