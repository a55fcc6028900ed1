//! The kernel's own account of a run, checked by its signatures: a network
//! namespace per run (counters the run's alone, sysctls set there and the
//! host's untouched), the TCP counters and the warning when it dropped
//! anything, the third witness in conservation, and every listener's
//! accept-queue depth over time.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{is_root, needs, num, read_csv, run, serial, show, summary};

/// kernel.csv as counter -> delta.
fn kernel(dir: &Path) -> HashMap<String, i64> {
    read_csv(&dir.join("kernel.csv"))
        .into_iter()
        .map(|r| {
            let d: i64 = r["delta"].parse().unwrap();
            (r["counter"].clone(), d)
        })
        .collect()
}

fn meta(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

#[test]
fn a_default_run_has_its_own_namespace_no_drops_and_the_kernel_agrees() {
    let _g = serial();
    if !needs(is_root(), "root (a network namespace per run)") {
        return;
    }
    let (o, dir) = run("kernel-default", &["--model", "reuseport", "--connections", "5000"]);
    crate::common::assert_conserved(&o, &dir, 5000);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("the kernel saw 5000 opened and 5000 established"),
        "{stdout}"
    );
    assert!(!stdout.contains("kernel: the accept queue"), "{stdout}");
    assert_eq!(meta(&dir)["netns"], "own");
    let s = summary(&dir);
    for c in [
        "kernel_listen_overflows",
        "kernel_listen_drops",
        "kernel_syn_cookies_sent",
        "kernel_reqq_full_drops",
        "kernel_syn_retrans",
        "kernel_estab_resets",
    ] {
        assert_eq!(s[c], "0", "{c}");
    }
    // The third witness: the run's namespace saw exactly the run.
    assert_eq!(num(&s, "kernel_passive_opens"), num(&s, "completed"));
    assert_eq!(num(&s, "kernel_active_opens"), 5000.0);
    let k = kernel(&dir);
    assert!(k.len() > 50, "every counter of TcpExt, IpExt, Ip and Tcp: {}", k.len());
    assert_eq!(k["Tcp.PassiveOpens"], 5000);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_backlog_of_one_overflows_and_says_what_that_costs() {
    let _g = serial();
    if !needs(is_root(), "root (a network namespace per run)") {
        return;
    }
    let (o, dir) = run(
        "kernel-backlog",
        &[
            "--model",
            "shared-blocking",
            "--backlog",
            "1",
            "--concurrency",
            "64",
            "--connections",
            "5000",
            "--timeout",
            "10s",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let s = summary(&dir);
    assert!(num(&s, "kernel_listen_overflows") > 0.0, "{}", show(&o));
    assert!(stdout.contains("kernel: the accept queue overflowed"), "{stdout}");
    assert!(stdout.contains("retransmitted after 1 s"), "{stdout}");
    // The queue, sampled, reached its limit of 1 (a full queue reads 1 or 2).
    let rows = read_csv(&dir.join("queue.csv"));
    assert!(rows.iter().all(|r| r["limit"] == "1"), "limit 1");
    assert!(rows.iter().any(|r| r["depth"].parse::<u32>().unwrap() >= 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sysctl_applies_in_the_runs_namespace_only() {
    let _g = serial();
    if !needs(is_root(), "root (a network namespace per run)") {
        return;
    }
    let path = "/proc/sys/net/core/somaxconn";
    let host = std::fs::read_to_string(path).unwrap();
    let (o, dir) = run(
        "kernel-somaxconn",
        &[
            "--model",
            "reuseport",
            "--sysctl",
            "net.core.somaxconn=64",
            "--connections",
            "2000",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    // The listen backlog is 511, the run's somaxconn caps the queues at 64.
    let rows = read_csv(&dir.join("queue.csv"));
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["limit"] == "64"), "{:?}", &rows[..1]);
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        host,
        "the host's value is unchanged"
    );
    let m = meta(&dir);
    assert_eq!(m["sysctls"]["net.core.somaxconn"], "64");
    assert_eq!(m["parameters"]["sysctl"]["net.core.somaxconn"], "64");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn with_netns_host_the_counters_are_machine_wide_and_sysctls_refused() {
    let _g = serial();
    let (o, dir) = run(
        "kernel-host",
        &["--model", "reuseport", "--netns", "host", "--connections", "500"],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(meta(&dir)["netns"], "host (--netns host)");
    assert!(dir.join("kernel.csv").is_file());
    let _ = std::fs::remove_dir_all(dir);
    let (o, dir) = run(
        "kernel-host-sysctl",
        &[
            "--model",
            "reuseport",
            "--netns",
            "host",
            "--sysctl",
            "net.core.somaxconn=64",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never changed"));
    assert!(!dir.exists());
    for bad in ["somaxconn=64", "kernel.pid_max=5", "net.core.somaxconn"] {
        let (o, _) = run("kernel-bad-sysctl", &["--model", "reuseport", "--sysctl", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(bad.split('=').next().unwrap()),
            "{bad}"
        );
    }
}

/// Worker 0 stops serving for a second: under reuseport its own accept
/// queue fills while the others' stay shallow, and every connection that
/// reached it during the stall waits out what remained of the stall; under
/// shared-blocking the one shared queue is drained by the three others.
#[test]
fn a_stalled_reuseport_worker_fills_its_own_queue_only() {
    let _g = serial();
    let args = |model: &'static str| {
        vec![
            "--model",
            model,
            "--workers",
            "4",
            "--rate",
            "400",
            "--duration",
            "2s",
            "--stall-worker",
            "0:500ms:1s",
            "--timeout",
            "5s",
            "--connection-log",
        ]
    };
    let (o, dir) = run("queue-stall-reuseport", &args("reuseport"));
    assert!(o.status.success(), "{}", show(&o));
    let w = read_csv(&dir.join("workers.csv"));
    let qmax = |i: usize| w[i]["queue_max"].parse::<u32>().unwrap();
    // About a quarter of 400/s for a second hashes to worker 0's socket:
    // ~100 wait there; the others serve as they come.
    assert!(qmax(0) >= 20, "the stalled worker's queue: {}", qmax(0));
    for i in 1..4 {
        assert!(
            qmax(i) * 4 < qmax(0),
            "worker {i}'s queue {} against {}",
            qmax(i),
            qmax(0)
        );
    }
    // queue.csv names each listener's worker: the deep samples are worker 0's.
    let rows = read_csv(&dir.join("queue.csv"));
    let deepest = rows.iter().max_by_key(|r| r["depth"].parse::<u32>().unwrap()).unwrap();
    assert_eq!(deepest["worker"], "0");
    // Time in the queue: a connection established at t during the stall
    // [from, to) is taken at `to` at the earliest, so its queue phase is at
    // least to - t (to within the csv's 1 us). The stall begins as the
    // worker takes a connection (it is spent serving that one, which was
    // taken before `from` however late the generator saw it established).
    let f = |r: &std::collections::HashMap<String, String>, k: &str| r[k].parse::<f64>().unwrap();
    let (from, to) = (f(&w[0], "stall_from_ms") * 1000.0, f(&w[0], "stall_to_ms") * 1000.0);
    let conns = read_csv(&dir.join("connections.csv"));
    let completed = summary(&dir)["completed"].parse::<usize>().unwrap();
    assert_eq!(conns.len(), completed, "one row per completed connection");
    let stalled: Vec<_> = conns
        .iter()
        .filter(|c| c["worker"] == "0" && (from..to).contains(&f(c, "established_us")) && f(c, "accepted_us") >= from)
        .collect();
    assert!(
        stalled.len() >= 10,
        "{} connections reached worker 0 during its stall",
        stalled.len()
    );
    for c in &stalled {
        let remained = to - f(c, "established_us");
        assert!(
            f(c, "queue_us") + 1.0 >= remained,
            "queued {} us with {remained} us of the stall left: {c:?}",
            c["queue_us"]
        );
    }
    let longest = |conns: &[std::collections::HashMap<String, String>]| {
        conns.iter().map(|c| f(c, "queue_us")).fold(0.0, f64::max)
    };
    let reuseport_longest = longest(&conns);
    let s = summary(&dir);
    assert!(num(&s, "queue_p999_us") <= num(&s, "total_p999_us") + 1.0);
    let _ = std::fs::remove_dir_all(dir);

    let (o, dir) = run("queue-stall-shared", &args("shared-blocking"));
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    // One queue for all, drained by the three that still serve.
    assert!(num(&s, "queue_max") < 20.0, "the shared queue: {}", s["queue_max"]);
    let rows = read_csv(&dir.join("queue.csv"));
    assert!(
        rows.iter().all(|r| r["worker"].is_empty()),
        "a shared listener has no one worker"
    );
    // The shared queue's longest wait is far shorter: reuseport's tail is
    // the stall's length, a shared queue's a few services.
    let shared_longest = longest(&read_csv(&dir.join("connections.csv")));
    assert!(
        shared_longest * 4.0 < reuseport_longest,
        "longest wait in the queue: shared {shared_longest} us, reuseport {reuseport_longest} us"
    );
    let _ = std::fs::remove_dir_all(dir);
}
