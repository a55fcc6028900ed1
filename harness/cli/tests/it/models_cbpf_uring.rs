//! End-to-end tests of `reuseport-cbpf` and `io-uring` through the `harness`
//! binary: each model's kernel signature, its listening sockets, and
//! conservation under load.
//!
//! Every test takes the shared lock (two cores: a distribution read beside
//! another run would be the scheduler's). io-uring tests skip, saying why,
//! where the kernel or sandbox refuses io_uring (the harness then refuses
//! the run before anything starts: "--model io-uring needs io_uring: it is
//! not available here (...)", as `harness doctor` reports it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;

use crate::common::{col, num, read_csv, run, serial, show, summary};

const WORKERS: usize = 4;

/// Runs `harness run` with `args` on a fleet of `WORKERS`; the output, the
/// directory and its workers.csv rows.
fn fleet(name: &str, args: &[&str]) -> (Output, PathBuf, Vec<HashMap<String, String>>) {
    let workers = WORKERS.to_string();
    let mut all = vec!["--workers", workers.as_str()];
    all.extend_from_slice(args);
    let (o, dir) = run(name, &all);
    let rows = if o.status.success() {
        read_csv(&dir.join("workers.csv"))
    } else {
        Vec::new()
    };
    (o, dir, rows)
}

/// Whether the harness refused io_uring on this machine (and the test
/// should skip): says so on stderr.
fn io_uring_refused(o: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let refused = !o.status.success() && stderr.contains("is not available here");
    !crate::common::needs(!refused, &format!("io_uring ({})", stderr.trim()))
}

/// The run succeeded, every connection was completed and counted once.
fn assert_conserved(o: &Output, dir: &std::path::Path, rows: &[HashMap<String, String>], connections: u64) {
    let (read, _) = crate::common::assert_conserved(o, dir, connections);
    assert_eq!(read, rows);
}
/// The CPUs this process may run on (its affinity, which the harness and its
/// load generator inherit), from /proc/self/status.
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string();
    list.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

#[test]
fn cbpf_cpu_steering_sends_a_pinned_load_generator_to_its_cpus_socket() {
    let _g = serial();
    let allowed = allowed_cpus();
    let mut checked = 0;
    for cpu in [0usize, 1] {
        if !allowed.contains(&cpu) {
            eprintln!("skipped CPU {cpu}: not in this process's CPU set {allowed:?}");
            continue;
        }
        let pin = cpu.to_string();
        let (o, dir, rows) = fleet(
            &format!("cbpf-pin{cpu}"),
            &[
                "--model",
                "reuseport-cbpf",
                "--steer",
                "cpu",
                "--pin-loadgen",
                &pin,
                "--concurrency",
                "8",
                "--connections",
                "2000",
            ],
        );
        assert_conserved(&o, &dir, &rows, 2000);
        let accepted = col(&rows, "accepted");
        let mut want = vec![0u64; WORKERS];
        want[cpu % WORKERS] = 2000;
        // On loopback the SYN is processed on the connecting thread's CPU, so
        // the program (cpu mod 4) picks the same socket for every connection.
        assert_eq!(accepted, want, "load generator on CPU {cpu}");
        checked += 1;
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(checked > 0 || allowed.iter().all(|c| *c > 1), "no CPU checked");
}

#[test]
fn cbpf_random_steering_spreads_over_every_worker() {
    let _g = serial();
    let (o, dir, rows) = fleet(
        "cbpf-random",
        &[
            "--model",
            "reuseport-cbpf",
            "--steer",
            "random",
            "--concurrency",
            "8",
            "--connections",
            "4000",
        ],
    );
    assert_conserved(&o, &dir, &rows, 4000);
    let accepted = col(&rows, "accepted");
    assert!(accepted.iter().all(|a| *a > 0), "a worker got nothing: {accepted:?}");
    // Binomial(4000, 1/4): each worker 1000 +- 27 (one sd); Jain about 0.998.
    // Chance, not timing: the program draws the socket at random.
    let jain = num(&summary(&dir), "jain");
    assert!(jain > 0.9, "Jain {jain} for {accepted:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cbpf_workers_own_distinct_listening_sockets() {
    let _g = serial();
    let (o, dir, rows) = fleet(
        "cbpf-inodes",
        &[
            "--model",
            "reuseport-cbpf",
            "--steer",
            "random",
            "--concurrency",
            "4",
            "--connections",
            "400",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let mut inodes = col(&rows, "listen_inode");
    assert!(inodes.iter().all(|i| *i > 0), "{inodes:?}");
    inodes.sort_unstable();
    inodes.dedup();
    assert_eq!(inodes.len(), WORKERS, "workers share a listening socket: {inodes:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cbpf_conserves_under_load_with_either_steering() {
    let _g = serial();
    // Unpinned, `--steer cpu` can only reach the sockets of the CPUs the load
    // generator runs on (cpu mod 4): on two CPUs, workers 2 and 3 get nothing.
    let reachable: Vec<usize> = allowed_cpus().iter().map(|c| c % WORKERS).collect();
    for steer in ["cpu", "random"] {
        let (o, dir, rows) = fleet(
            &format!("cbpf-cons-{steer}"),
            &[
                "--model",
                "reuseport-cbpf",
                "--steer",
                steer,
                "--concurrency",
                "32",
                "--connections",
                "20000",
            ],
        );
        assert_conserved(&o, &dir, &rows, 20000);
        if steer == "cpu" {
            let accepted = col(&rows, "accepted");
            for (w, a) in accepted.iter().enumerate() {
                if !reachable.contains(&w) {
                    assert_eq!(*a, 0, "worker {w} is no CPU's socket: {accepted:?}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Share of the busiest worker, and the sum of the others' wakeups and
/// voluntary context switches.
fn top_and_rest(rows: &[HashMap<String, String>]) -> (f64, u64, u64) {
    let accepted = col(rows, "accepted");
    let top = (0..accepted.len()).max_by_key(|i| accepted[*i]).unwrap();
    let total: u64 = accepted.iter().sum();
    let rest = |name: &str| -> u64 {
        col(rows, name)
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != top)
            .map(|(_, v)| v)
            .sum()
    };
    (
        accepted[top] as f64 / total as f64,
        rest("wakeups"),
        rest("voluntary_switches"),
    )
}

#[test]
fn io_uring_conserves_under_load_and_one_worker_takes_it_all() {
    let _g = serial();
    let (o, dir, rows) = fleet(
        "uring-cons",
        &["--model", "io-uring", "--concurrency", "32", "--connections", "20000"],
    );
    if io_uring_refused(&o) {
        return;
    }
    assert_conserved(&o, &dir, &rows, 20000);
    // One shared listener.
    let inodes = col(&rows, "listen_inode");
    assert!(inodes.iter().all(|i| *i == inodes[0] && *i > 0), "{inodes:?}");
    // Each worker's multishot accept waits on the listener as an exclusive
    // waiter and is never requeued, so the first to arm is woken for every
    // connection, busy or not (measured: 20000 / 0 / 0 / 0, about 18
    // completions per batch): not a matter of timing, the ring takes the
    // connection whether its worker runs or not.
    let (top, rest_wakeups, _) = top_and_rest(&rows);
    assert!(top >= 0.99, "no worker took 99%: {:?}", col(&rows, "accepted"));
    assert_eq!(rest_wakeups, 0, "{:?}", col(&rows, "wakeups"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn io_uring_serial_client_goes_to_one_worker_and_wakes_no_other() {
    let _g = serial();
    let (o, dir, rows) = fleet(
        "uring-serial",
        &[
            "--model",
            "io-uring",
            "--concurrency",
            "1",
            "--gap",
            "200us",
            "--connections",
            "1000",
        ],
    );
    if io_uring_refused(&o) {
        return;
    }
    assert_conserved(&o, &dir, &rows, 1000);
    // The signature: like epoll-exclusive, one worker takes everything (which
    // one is whichever armed first; measured 1000 / 0 / 0 / 0 in every run),
    // and no herd: the others are never woken, not even inside the kernel.
    let (top, rest_wakeups, rest_switches) = top_and_rest(&rows);
    assert!(top >= 0.99, "no worker took 99%: {:?}", col(&rows, "accepted"));
    assert_eq!(rest_wakeups, 0, "{:?}", col(&rows, "wakeups"));
    assert!(
        rest_switches <= 10,
        "idle workers were woken: {:?}",
        col(&rows, "voluntary_switches")
    );
    let _ = std::fs::remove_dir_all(dir);
}
