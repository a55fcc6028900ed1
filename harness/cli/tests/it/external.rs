//! Real servers and `--target`: the load generator's per-worker attribution
//! must equal what Node.js and nginx count themselves, each server must show
//! the kernel signature of its accept mechanism, and a server the harness did
//! not start is attributed by a header or the body, refused off loopback, and
//! classified correctly when it misbehaves.
//!
//! The servers run for real: `.ci/run` installs nginx and nodejs, and the
//! harness installs them itself (as root) when they are missing.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;

/// How a server's workers take connections, as /proc shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Listener {
    /// One socket in every worker.
    Shared,
    /// A socket of its own in each worker (SO_REUSEPORT).
    OwnEach,
    /// None in the workers: the master accepts and hands connections over.
    None,
}

/// A short run of the real server `name` (4 workers, 1200 connections of 2
/// requests): it conserves, its own counts equal the attribution, and its
/// workers show `signature` in /proc. Also used by `servers.rs`.
pub(crate) fn check_server(name: &str, signature: Listener, extra: &[&str]) {
    check_server_per_conn(name, signature, extra, 2);
}

/// [`check_server`] with `per_conn` requests on each connection (1 for a
/// server that closes every connection after its response).
pub(crate) fn check_server_per_conn(name: &str, signature: Listener, extra: &[&str], per_conn: u64) {
    let _g = serial();
    let per_conn_arg = per_conn.to_string();
    let mut args = vec![
        "--model",
        name,
        "--workers",
        "4",
        "--connections",
        "1200",
        "--concurrency",
        "4",
        "--requests-per-conn",
        &per_conn_arg,
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    let (o, dir) = run(name, &args);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("the server's own count of every worker equals"),
        "{name}: {stdout}"
    );

    let s = summary(&dir);
    assert_eq!(s["model"], name);
    assert_eq!(num(&s, "completed"), 1200.0, "{name}");
    assert_eq!(num(&s, "errors"), 0.0, "{name}");
    assert_eq!(s["conserved"], "true", "{name}");

    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(rows.len(), 4, "{name}: one row per server worker");
    if extra.contains(&"kernel") {
        // The kernel saw every connection accepted once, by the workers.
        assert_eq!(
            col(&rows, "kernel_accepted").iter().sum::<u64>(),
            1200,
            "{name}: {}",
            show(&o)
        );
    }
    let (accepted, attributed) = (col(&rows, "accepted"), col(&rows, "attributed"));
    let (requests, attributed_requests) = (col(&rows, "requests"), col(&rows, "attributed_requests"));
    assert_eq!(
        accepted, attributed,
        "{name}: the server's counts against the attribution"
    );
    assert_eq!(requests, attributed_requests, "{name}");
    assert_eq!(accepted.iter().sum::<u64>(), 1200, "{name}");
    for (c, r) in accepted.iter().zip(&requests) {
        assert_eq!(
            *r,
            per_conn * c,
            "{name}: every request of a connection goes to its worker"
        );
    }
    let pids = col(&rows, "pid");
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), 4, "{name}: {pids:?}");
    for (row, pid) in rows.iter().zip(&pids) {
        assert_eq!(row["worker_id"], pid.to_string(), "{name}: x-worker is the pid");
        assert!(!alive(*pid as u32), "{name}: worker {pid} outlived the run");
    }

    // The server's own record, as written beside the run.
    let own: BTreeMap<u64, (u64, u64)> = read_csv(&dir.join("server-counts.csv"))
        .iter()
        .map(|r| {
            (
                r["pid"].parse().unwrap(),
                (r["connections"].parse().unwrap(), r["requests"].parse().unwrap()),
            )
        })
        .collect();
    let warmup = extra.contains(&"--warmup");
    for ((pid, c), r) in pids.iter().zip(&accepted).zip(&requests) {
        let (oc, or) = own[pid];
        if warmup {
            assert!(oc >= *c && or >= *r, "{name}: the warm-up adds to the server's count");
        } else {
            assert_eq!((oc, or), (*c, *r), "{name}: worker {pid}");
        }
    }
    if warmup {
        let total: u64 = own.values().map(|o| o.0).sum();
        assert!(
            total > 1200,
            "{name}: the warm-up's connections were subtracted ({total})"
        );
    }

    // The time series, from the load generator's attribution, sums to the counts.
    let series = read_csv(&dir.join("timeseries.csv"));
    for (i, c) in accepted.iter().enumerate() {
        let mine: Vec<_> = series
            .iter()
            .filter(|r| r["worker"] == i.to_string())
            .cloned()
            .collect();
        assert!(!mine.is_empty(), "{name}: no time series for worker {i}");
        assert_eq!(col(&mine, "accepted").iter().sum::<u64>(), *c, "{name}: worker {i}");
        assert_eq!(
            col(&mine, "requests").iter().sum::<u64>(),
            per_conn * c,
            "{name}: worker {i}"
        );
    }

    let inodes: Vec<&str> = rows.iter().map(|r| r["listen_inode"].as_str()).collect();
    let distinct: HashSet<&&str> = inodes.iter().collect();
    match signature {
        Listener::Shared => assert!(
            distinct.len() == 1 && !inodes[0].is_empty(),
            "{name}: one shared socket: {inodes:?}"
        ),
        Listener::OwnEach => assert!(
            distinct.len() == 4 && inodes.iter().all(|i| !i.is_empty()),
            "{name}: a socket per worker: {inodes:?}"
        ),
        Listener::None => assert!(inodes.iter().all(|i| i.is_empty()), "{name}: {inodes:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nginx_exclusive_counts_agree_and_workers_share_one_socket() {
    check_server("nginx-exclusive", Listener::Shared, &["--warmup", "200ms"]);
}

#[test]
fn nginx_mutex_counts_agree_and_workers_share_one_socket() {
    check_server("nginx-mutex", Listener::Shared, &[]);
}

#[test]
fn nginx_reuseport_counts_agree_and_each_worker_polls_its_own_socket() {
    check_server("nginx-reuseport", Listener::OwnEach, &[]);
}

#[test]
fn node_seed_counts_agree_and_workers_share_the_masters_handle() {
    check_server("node-seed", Listener::Shared, &[]);
}

#[test]
fn node_cluster_none_counts_agree_and_workers_share_one_socket() {
    check_server("node-none", Listener::Shared, &[]);
}

#[test]
fn node_cluster_rr_counts_agree_and_only_the_master_listens() {
    check_server("node-rr", Listener::None, &["--warmup", "200ms"]);
}

#[test]
fn external_command_compares_servers_with_their_counterparts() {
    let _g = serial();
    let out = scratch("external-cmd");
    let o = harness()
        .args([
            "external",
            "nginx-reuseport",
            "--connections",
            "600",
            "--no-plots",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("nginx-reuseport: the server's own counts against the load generator's"),
        "{stdout}"
    );
    assert!(!stdout.contains("DIFFERS"), "{stdout}");
    let runs = read_csv(&out.join("runs.csv"));
    let models: Vec<&str> = runs.iter().map(|r| r["model"].as_str()).collect();
    assert_eq!(
        models,
        ["nginx-reuseport", "reuseport"],
        "the server, then its counterpart"
    );
    let workers = read_csv(&out.join("workers.csv"));
    assert_eq!(workers.len(), 8);
    let _ = std::fs::remove_dir_all(out);
}

// ------------------------------------------------------------ --target

/// What a hand-made server does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers with the worker id (alternating between two) in a header.
    Header(&'static str, [&'static str; 2]),
    /// Answers with the worker id as the body.
    Body([&'static str; 2]),
    /// Reads the request and never answers.
    Silent,
    /// Waits for the request and closes without reading it: an RST.
    Reset,
    /// Answers with something that is not HTTP.
    Garbage,
}

struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(behaviour: Behaviour) -> TestServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let (stop2, counts2) = (Arc::clone(&stop), Arc::clone(&counts));
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let mut n = 0usize;
            // Bounded: until stopped, or 60 s at most (a liveness bound for a
            // test that forgets to stop it).
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let id = |ids: [&str; 2]| ids[n % 2].to_string();
                match behaviour {
                    Behaviour::Header(name, ids) => {
                        read_head(&mut s);
                        let resp = format!("HTTP/1.1 200 OK\r\n{name}: {}\r\ncontent-length: 2\r\n\r\nok", id(ids));
                        let _ = s.write_all(resp.as_bytes());
                        *counts2.lock().unwrap().entry(id(ids)).or_default() += 1;
                    }
                    Behaviour::Body(ids) => {
                        read_head(&mut s);
                        let body = format!("{}\n", id(ids));
                        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                        let _ = s.write_all(resp.as_bytes());
                        *counts2.lock().unwrap().entry(id(ids)).or_default() += 1;
                    }
                    Behaviour::Silent => {
                        read_head(&mut s);
                        held.push(s);
                    }
                    Behaviour::Reset => {
                        let mut b = [0u8; 1];
                        let _ = s.peek(&mut b);
                        drop(s);
                    }
                    Behaviour::Garbage => {
                        read_head(&mut s);
                        let _ = s.write_all(b"HELLO THERE\r\n\r\n");
                    }
                }
                n += 1;
            }
        });
        TestServer {
            addr,
            stop,
            counts,
            thread: Some(thread),
        }
    }

    fn counts(mut self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.counts.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads up to the end of a request head (or 2 s, or EOF).
fn read_head(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn run_target(name: &str, server: &TestServer, extra: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let addr = server.addr.to_string();
    let mut args = vec!["--target", addr.as_str(), "--threads", "1"];
    args.extend_from_slice(extra);
    run(name, &args)
}

/// Responses that name no worker (the seed's demo as printed): nobody to
/// attribute anything to, so the fairness figures are undefined: empty in
/// the CSV, `n/a` in the table with the reason, and conservation fails on
/// the unknown worker's responses.
#[test]
fn a_target_that_names_no_worker_has_undefined_fairness() {
    let _g = serial();
    let server = TestServer::start(Behaviour::Header("x-other", ["1", "2"]));
    let (o, dir) = run_target(
        "target-anonymous",
        &server,
        &["--connections", "200", "--concurrency", "2"],
    );
    assert_eq!(server.counts().values().sum::<u64>(), 200);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Jain n/a"), "{stdout}");
    assert!(stdout.contains("idle workers n/a"), "{stdout}");
    assert!(
        stdout.contains("fairness n/a: no connection was attributed to any worker"),
        "{stdout}"
    );
    assert!(stdout.contains("200 responses from unknown worker '?'"), "{stdout}");
    let s = summary(&dir);
    assert_eq!((s["workers"].as_str(), s["completed"].as_str()), ("0", "200"));
    for figure in [
        "jain",
        "cov",
        "max_min_ratio",
        "gini",
        "top1_share",
        "idle_workers",
        "req_jain",
    ] {
        assert_eq!(s[figure], "", "{figure} of no worker");
    }
    assert_eq!(s["conserved"], "false");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn target_is_attributed_by_a_custom_header() {
    let _g = serial();
    let server = TestServer::start(Behaviour::Header("x-served-by", ["alpha", "beta"]));
    let (o, dir) = run_target(
        "target-header",
        &server,
        &[
            "--attribute",
            "header:X-Served-By",
            "--connections",
            "301",
            "--concurrency",
            "2",
        ],
    );
    let own = server.counts();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("own counts are unknown"),
        "{}",
        show(&o)
    );
    let rows = read_csv(&dir.join("workers.csv"));
    let got: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| (r["worker_id"].clone(), r["attributed"].parse().unwrap()))
        .collect();
    assert_eq!(got, own, "the attribution equals what the server counted");
    assert_eq!(got.values().sum::<u64>(), 301);
    assert_eq!(summary(&dir)["model"], "external");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn target_is_attributed_by_the_body() {
    let _g = serial();
    let server = TestServer::start(Behaviour::Body(["7", "12"]));
    let (o, dir) = run_target(
        "target-body",
        &server,
        &["--attribute", "body", "--connections", "200", "--concurrency", "2"],
    );
    let own = server.counts();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let rows = read_csv(&dir.join("workers.csv"));
    let ids: Vec<&str> = rows.iter().map(|r| r["worker_id"].as_str()).collect();
    assert_eq!(ids, ["7", "12"], "numeric ids in numeric order");
    assert_eq!(col(&rows, "attributed"), vec![own["7"], own["12"]]);
    assert_eq!(col(&rows, "pid"), vec![7, 12]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `behaviour` with 4 connections, 2 in flight and a 1 s timeout: the
/// run must end (exit 1) with every connection in `class`. That it ends at
/// all is bounded by `run` (a liveness bound: every connection ends within
/// the timeout, so the run cannot hang); how long it took is checked only
/// where it follows from the timeout, as a lower bound: a server that never
/// answers holds each connection for the whole timeout, so the two rounds
/// of two take at least 2 s, however fast or slow the machine.
fn hostile(name: &str, behaviour: Behaviour, class: &str) {
    let _g = serial();
    let server = TestServer::start(behaviour);
    let (o, dir) = run_target(
        name,
        &server,
        &["--connections", "4", "--concurrency", "2", "--timeout", "1s"],
    );
    drop(server);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", show(&o));
    let s = summary(&dir);
    assert_eq!(num(&s, "completed"), 0.0, "{name}");
    assert_eq!(num(&s, class), 4.0, "{name}: {s:?}");
    assert_eq!(num(&s, "errors"), 4.0, "{name}");
    if class == "err_timeout" {
        let took = num(&s, "duration_s");
        assert!(took >= 2.0 - 1e-4, "{name}: timed out early, in {took} s");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("conservation: FAILED") && stdout.contains("4 connections failed"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_server_that_never_answers_times_out() {
    hostile("target-silent", Behaviour::Silent, "err_timeout");
}

#[test]
fn a_server_that_resets_every_connection_is_reset() {
    hostile("target-reset", Behaviour::Reset, "err_reset");
}

#[test]
fn a_server_that_sends_garbage_is_malformed() {
    hostile("target-garbage", Behaviour::Garbage, "err_malformed");
}

fn usage_error(args: &[&str], needles: &[&str]) {
    let o = harness().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: not one line: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: {stderr:?} does not name {n:?}");
    }
    assert!(o.stdout.is_empty(), "{args:?}: something ran: {}", show(&o));
}

#[test]
fn bad_targets_are_refused_in_one_line() {
    // Off loopback: refused before any connection is made.
    usage_error(
        &["run", "--target", "192.0.2.1:80", "--connections", "1"],
        &["192.0.2.1:80", "not on loopback", "--allow-remote"],
    );
    usage_error(&["run", "--target", "nowhere"], &["'nowhere'", "HOST:PORT"]);
    usage_error(
        &["run", "--target", "127.0.0.1:9", "--attribute", "header:"],
        &["header:"],
    );
    usage_error(
        &["run", "--target", "127.0.0.1:9", "--attribute", "cookie"],
        &["cookie"],
    );
    usage_error(
        &["run", "--model", "reuseport", "--allow-remote"],
        &["--allow-remote", "--target"],
    );
    usage_error(
        &["run", "--model", "reuseport", "--attribute", "body"],
        &["--attribute", "--target"],
    );
    usage_error(
        &["run", "--model", "reuseport", "--target", "127.0.0.1:9"],
        &["--target"],
    );
    usage_error(
        &["run", "--target", "127.0.0.1:9", "--slow-worker", "0:10"],
        &["--slow-worker", "own fleets"],
    );
    usage_error(
        &["run", "--model", "nginx-mutex", "--service", "sleep:1ms"],
        &["--service", "nginx-mutex"],
    );
    usage_error(&["external", "apache"], &["'apache'", "node-seed", "all"]);
}

/// Processes in the tree under `pid` (children, grandchildren ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            all.push(c);
            todo.push(c);
        }
    }
    all
}

/// Starts `harness run --model NAME` for a long time (120 s: a run the
/// test ends itself) and waits until the server's workers are up; returns
/// the child and the server's master pid.
fn long_server_run(name: &str, out: &std::path::Path) -> (std::process::Child, u32) {
    let mut child = harness()
        .args([
            "run",
            "--model",
            name,
            "--duration",
            "120s",
            "--concurrency",
            "2",
            "--out",
        ])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut master = 0;
    let up = wait_until(Duration::from_secs(60), || {
        master = children(pid).first().copied().unwrap_or(0);
        master != 0 && children(master).len() == 4
    });
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name}: the server did not start under the harness");
    }
    (child, master)
}

#[test]
fn a_server_that_dies_mid_run_fails_the_run_and_leaves_nothing() {
    let _g = serial();
    let out = scratch("server-dies");
    let (mut child, master) = long_server_run("nginx-reuseport", &out);
    let workers = children(master);
    // Kill the master while the load runs: once the load generator's
    // threads exist, not after a guessed time.
    if !wait_until(Duration::from_secs(60), || load_running(child.id())) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the load did not start");
    }
    // nginx's workers keep serving when their master dies; the harness must
    // notice the master is gone, stop, and take the workers down. Liveness
    // bound: it checks at every sample (100 ms); had it not noticed, the run
    // would go on for its 120 s.
    sigkill(master);
    let status = wait_within(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("nginx-reuseport exited during the run"), "{err}");
    assert!(
        wait_until(Duration::from_secs(10), || workers.iter().all(|w| !alive(*w))),
        "nginx workers outlived the run: {workers:?}"
    );
    assert!(!out.join("summary.csv").exists(), "a failed run leaves no result");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn killing_the_harness_takes_the_server_with_it() {
    let _g = serial();
    for name in ["node-seed", "nginx-exclusive"] {
        let out = scratch("harness-killed");
        let (mut child, master) = long_server_run(name, &out);
        let tree = descendants(child.id());
        assert!(tree.len() >= 5, "{name}: {tree:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        // Liveness bound: the server's processes die with the harness.
        assert!(
            wait_until(Duration::from_secs(10), || tree.iter().all(|p| !alive(*p))),
            "{name}: left behind: {:?}",
            tree.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        assert!(!alive(master));
        let _ = std::fs::remove_dir_all(out);
    }
}

/// SIGKILL by pid through the `kill` command (the tests use no unsafe).
fn sigkill(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -KILL {pid}");
}
