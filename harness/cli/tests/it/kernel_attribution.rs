//! `--attribute kernel`: the kernel's count of who accepted each connection,
//! checked by signature against what each subject counts itself: each
//! worker of a shared-socket fleet or server accepted what it counted
//! (nginx: its access log, by pid; Node: its own counts), a dispatcher or
//! Node's cluster master accepted everything and its workers nothing, the
//! seed's demo exactly as the article prints it accepted by pid what it
//! printed, `--kernel-by thread` gives a row per accepting thread, and a run
//! without the capability is refused in one line.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

/// The tests count accepts with perf counters: root here (CI's kind).
fn can_count() -> bool {
    needs(is_root(), "root (perf counters on the accept tracepoints)")
}

/// A workers.csv column that may be empty, by worker.
fn opt_col(rows: &[Row], name: &str) -> Vec<Option<u64>> {
    rows.iter().map(|r| r[name].parse().ok()).collect()
}

/// A workers.csv or summary.csv table.
type Rows = Vec<std::collections::HashMap<String, String>>;

/// `harness run ARGS --concurrency 4 --connections N --attribute kernel`,
/// which must conserve; its output, directory, workers and summary. `None`
/// (skipped) where accepts cannot be counted.
fn counted(name: &str, args: &[&str], connections: u64) -> Option<(Output, PathBuf, Rows, Row)> {
    if !can_count() {
        return None;
    }
    let n = connections.to_string();
    let mut all = args.to_vec();
    all.extend([
        "--concurrency",
        "4",
        "--connections",
        &n,
        "--threads",
        "1",
        "--attribute",
        "kernel",
    ]);
    let (o, dir) = {
        let _g = serial();
        run(name, &all)
    };
    let (rows, s) = assert_conserved(&o, &dir, connections);
    Some((o, dir, rows, s))
}

/// One summary.csv row.
type Row = std::collections::HashMap<String, String>;

#[test]
fn each_worker_of_a_shared_socket_accepted_what_it_counted() {
    let Some((o, dir, rows, s)) = counted(
        "kattr-blocking",
        &["--model", "shared-blocking", "--workers", "4"],
        2000,
    ) else {
        return;
    };
    let kernel = opt_col(&rows, "kernel_accepted");
    let accepted = col(&rows, "accepted");
    assert_eq!(
        kernel,
        accepted.iter().map(|a| Some(*a)).collect::<Vec<_>>(),
        "{}",
        show(&o)
    );
    assert_eq!(s["kernel_accepted"], "2000");
    assert!(!s["kernel_jain"].is_empty() && !s["kernel_max_min_ratio"].is_empty());
    // Both views agree: accepts.csv has the workers only, served = accepted.
    let accepts = read_csv(&dir.join("accepts.csv"));
    assert_eq!(accepts.len(), 4);
    assert_eq!(col(&accepts, "kernel_accepted"), col(&accepts, "served"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_dispatcher_accepted_everything_and_its_workers_nothing() {
    let Some((o, dir, rows, s)) = counted("kattr-dispatch", &["--model", "dispatch-rr", "--workers", "4"], 2000) else {
        return;
    };
    assert_eq!(opt_col(&rows, "kernel_accepted"), [Some(0); 4], "{}", show(&o));
    let accepts = read_csv(&dir.join("accepts.csv"));
    // The four workers (served, accepted nothing) and the dispatcher.
    assert_eq!(accepts.len(), 5, "{accepts:?}");
    let dispatcher = &accepts[4];
    assert_eq!((dispatcher["worker"].as_str(), dispatcher["served"].as_str()), ("", ""));
    assert_eq!(dispatcher["kernel_accepted"], "2000");
    assert_eq!(col(&accepts[..4], "served"), col(&rows, "accepted"));
    // Who accepted: one of five. Who served: even.
    assert_eq!((num(&s, "kernel_jain"), num(&s, "jain")), (0.2, 1.0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn io_uring_accepts_are_not_counted_and_the_run_says_so() {
    let uring = std::path::Path::new("/proc/sys/kernel/io_uring_disabled").exists();
    if !needs(uring, "io_uring") {
        return;
    }
    let Some((o, dir, rows, s)) = counted("kattr-uring", &["--model", "io-uring", "--workers", "2"], 500) else {
        return;
    };
    assert_eq!(opt_col(&rows, "kernel_accepted"), [None, None]);
    assert_eq!(s["kernel_accepted"], "");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("io-uring's accepts are not counted"),
        "{}",
        show(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_thread_fleet_by_thread_has_a_row_per_accepting_thread() {
    let Some((_, dir, rows, _)) = counted(
        "kattr-threads",
        &[
            "--model",
            "shared-blocking",
            "--fleet",
            "threads",
            "--workers",
            "4",
            "--kernel-by",
            "thread",
        ],
        2000,
    ) else {
        return;
    };
    let accepted = col(&rows, "accepted");
    assert_eq!(
        opt_col(&rows, "kernel_accepted"),
        accepted.iter().map(|a| Some(*a)).collect::<Vec<_>>()
    );
    let accepts = read_csv(&dir.join("accepts.csv"));
    assert_eq!(accepts.len(), 4, "{accepts:?}");
    let process: Vec<&str> = accepts.iter().map(|r| r["pid"].as_str()).collect();
    assert!(process.iter().all(|p| *p == process[0]), "one process: {process:?}");
    let tids: Vec<u64> = col(&accepts, "tid");
    assert_eq!(tids, col(&rows, "pid"), "the rows are the workers' threads");
    let _ = std::fs::remove_dir_all(dir);
}

/// Every worker's count in `server-counts.csv` (a real server's own), by pid.
fn own_counts(dir: &Path) -> BTreeMap<u64, u64> {
    read_csv(&dir.join("server-counts.csv"))
        .iter()
        .map(|r| (r["pid"].parse().unwrap(), r["connections"].parse().unwrap()))
        .collect()
}

/// Runs real server `name` (4 workers, 1500 connections) with kernel
/// attribution.
fn server_run(name: &str) -> Option<(Output, PathBuf, Rows, Row)> {
    counted(&format!("kattr-{name}"), &["--model", name, "--workers", "4"], 1500)
}

/// Runs real server `name`: each worker's kernel count must be its own
/// count (server-counts.csv), by pid, and nobody else accepted (a master
/// that holds the socket and accepts nothing has no row).
fn own_counts_are_the_kernels(name: &str) {
    let Some((o, dir, rows, _)) = server_run(name) else {
        return;
    };
    let own = own_counts(&dir);
    for r in &rows {
        let pid: u64 = r["pid"].parse().unwrap();
        let what = format!("{name} worker {pid}: {}", show(&o));
        assert_eq!(r["kernel_accepted"], own[&pid].to_string(), "{what}");
    }
    assert_eq!(read_csv(&dir.join("accepts.csv")).len(), 4);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nginx_workers_accepted_what_their_access_log_says_by_pid() {
    own_counts_are_the_kernels("nginx-exclusive");
}

#[test]
fn node_seed_workers_accepted_what_they_counted_by_pid() {
    own_counts_are_the_kernels("node-seed");
}

#[test]
fn node_cluster_rr_master_accepted_everything_its_workers_served() {
    let Some((o, dir, rows, s)) = server_run("node-rr") else {
        return;
    };
    assert_eq!(opt_col(&rows, "kernel_accepted"), [Some(0); 4], "{}", show(&o));
    let accepts = read_csv(&dir.join("accepts.csv"));
    let master: Vec<_> = accepts.iter().filter(|r| r["worker"].is_empty()).collect();
    assert_eq!(master.len(), 1, "{accepts:?}");
    assert_eq!(master[0]["kernel_accepted"], "1500");
    let pids: Vec<u64> = col(&rows, "pid");
    assert!(!pids.contains(&master[0]["pid"].parse().unwrap()));
    assert_eq!(num(&s, "kernel_jain"), 0.2);
    let _ = std::fs::remove_dir_all(dir);
}

/// The seed's demo as the article prints it, started from its directory in
/// a process group of its own, killed with the group when dropped.
struct SeedDemo {
    child: Child,
    /// What it printed so far, read as it prints (a full pipe would hold
    /// its workers' lines back).
    printed: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl SeedDemo {
    fn start() -> SeedDemo {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/node-cluster/seed-as-printed");
        let mut child = Command::new("node")
            .arg("master.js")
            .current_dir(dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let mut stdout = child.stdout.take().unwrap();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = printed.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        SeedDemo {
            child,
            printed,
            reader: Some(reader),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port its four workers listen on, once they all hold the socket.
    fn port(&self) -> u16 {
        let mut found = None;
        let ready = wait_until(Duration::from_secs(60), || {
            found = listening_port(self.pid());
            let workers = children(self.pid());
            found.is_some()
                && workers.len() == 4
                && workers.iter().all(|w| socket_inodes(*w).contains(&found.unwrap().1))
        });
        assert!(ready, "the seed's demo never listened with 4 workers");
        found.unwrap().0
    }

    /// What it printed once it has printed a line for each of `connections`
    /// (or after a liveness bound); then stops it.
    fn output(mut self, connections: u64) -> String {
        wait_until(Duration::from_secs(60), || {
            printed_counts(&self.printed.lock().unwrap()).values().sum::<u64>() >= connections
        });
        let _ = sys::kill(-(self.pid() as i32), libc::SIGKILL);
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let out = self.printed.lock().unwrap().clone();
        out
    }
}

impl Drop for SeedDemo {
    fn drop(&mut self) {
        let _ = sys::kill(-(self.child.id() as i32), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The socket inodes process `pid` holds.
fn socket_inodes(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The TCP port (and socket inode) process `pid` listens on, per /proc/net/tcp.
fn listening_port(pid: u32) -> Option<(u16, u64)> {
    let held = socket_inodes(pid);
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let inode: u64 = f.get(9)?.parse().ok()?;
        if f.get(3) != Some(&"0A") || !held.contains(&inode) {
            return None;
        }
        let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        Some((port, inode))
    })
}

/// The demo's own account: `worker <pid> got N connections`, from its
/// line per connection (`got a connection on worker, pid = <pid>`).
fn printed_counts(out: &str) -> BTreeMap<u64, u64> {
    let mut counts = BTreeMap::new();
    for l in out.lines() {
        if let Some(pid) = l.strip_prefix("got a connection on worker, pid = ") {
            *counts.entry(pid.trim().parse().unwrap()).or_default() += 1;
        }
    }
    counts
}

/// Runs the seed's demo under `harness run --target ... --attribute kernel`
/// with `extra` (and its workers named with `--target-pid` if `named`);
/// the run's output and directory, and what the demo printed.
fn seed_demo_run(name: &str, extra: &[&str], named: bool) -> Option<(Output, PathBuf, BTreeMap<u64, u64>)> {
    if !can_count() || !needs(on_path("node"), "node") {
        return None;
    }
    let _g = serial();
    let demo = SeedDemo::start();
    let target = format!("127.0.0.1:{}", demo.port());
    let mut args = vec![
        "--target",
        &target,
        "--attribute",
        "kernel",
        "--concurrency",
        "2",
        "--connections",
        "3000",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    let pids: Vec<String> = match named {
        true => children(demo.pid()).iter().map(|p| p.to_string()).collect(),
        false => Vec::new(),
    };
    for p in &pids {
        args.extend(["--target-pid", p]);
    }
    let (o, dir) = run(name, &args);
    let completed = summary(&dir).get("completed").and_then(|c| c.parse().ok()).unwrap_or(0);
    let printed = printed_counts(&demo.output(completed));
    Some((o, dir, printed))
}

fn on_path(binary: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(binary).is_file())
}

#[test]
fn the_seeds_demo_as_printed_agrees_with_the_kernel_by_pid() {
    let Some((o, dir, printed)) = seed_demo_run("kattr-seed", &[], false) else {
        return;
    };
    let what = show(&o);
    assert!(o.status.success(), "{what}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("conservation: ok as far as it can be checked"),
        "{what}"
    );
    let rows = read_csv(&dir.join("workers.csv"));
    let kernel: BTreeMap<u64, u64> = rows
        .iter()
        .map(|r| (r["pid"].parse().unwrap(), r["kernel_accepted"].parse().unwrap()))
        .collect();
    // Worker by worker, by pid: the kernel's count is the demo's own.
    assert_eq!(printed.len(), 4, "{printed:?}");
    assert_eq!(kernel, printed, "{what}");
    assert_eq!(printed.values().sum::<u64>(), 3000);
    // The responses name nobody: no worker is attributed by response.
    assert_eq!(col(&rows, "attributed"), [0; 4]);
    assert_eq!(col(&rows, "accepted"), kernel.values().copied().collect::<Vec<_>>());
    let s = summary(&dir);
    assert_eq!((s["conserved"].as_str(), s["completed"].as_str()), ("true", "3000"));
    assert!(!s["jain"].is_empty() && s["jain"] == s["kernel_jain"], "{s:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_seeds_demo_by_thread_and_named_by_pid_has_a_row_per_accepting_thread() {
    let Some((o, dir, printed)) = seed_demo_run("kattr-seed-threads", &["--kernel-by", "thread"], true) else {
        return;
    };
    assert!(o.status.success(), "{}", show(&o));
    let rows = read_csv(&dir.join("workers.csv"));
    // Node's workers have a dozen threads each; only the main one accepts.
    assert_eq!(rows.len(), 4, "{}", show(&o));
    let accepts = read_csv(&dir.join("accepts.csv"));
    let by_process: BTreeMap<u64, u64> = accepts
        .iter()
        .map(|r| {
            assert_eq!(r["tid"], r["pid"], "the main thread accepts: {r:?}");
            (r["pid"].parse().unwrap(), r["kernel_accepted"].parse().unwrap())
        })
        .collect();
    assert_eq!(by_process, printed);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_target_pid_that_is_not_running_is_refused_naming_it() {
    if !can_count() {
        return;
    }
    let out = scratch("kattr-no-pid");
    // The highest pid there can be, which no process has.
    let o = output_within(
        harness()
            .args([
                "run",
                "--target",
                "127.0.0.1:9",
                "--attribute",
                "kernel",
                "--target-pid",
                "4194304",
            ])
            .args(["--connections", "10", "--out"])
            .arg(&out),
        Duration::from_secs(120),
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("no process 4194304 to count on"), "{stderr}");
}

#[test]
fn without_root_kernel_attribution_is_refused_in_one_line() {
    if !is_root() {
        eprintln!("skipped: only root can run the harness as another user");
        return;
    }
    let out = scratch("kattr-refused");
    let o = output_within(
        harness()
            .args([
                "run",
                "--model",
                "shared-blocking",
                "--connections",
                "10",
                "--attribute",
                "kernel",
                "--out",
            ])
            .arg(&out)
            .uid(65534)
            .gid(65534),
        Duration::from_secs(120),
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for needle in ["--attribute kernel", "not root", "perf_event_paranoid"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!out.exists(), "a refused run writes nothing");
}
