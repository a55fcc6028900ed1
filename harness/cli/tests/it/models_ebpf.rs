//! The eBPF steering models by their kernel signatures: `reuseport-ebpf-rr`
//! deals a serial client's connections in exact turns and keeps them within
//! one of an even split when saturated; `reuseport-ebpf-least` offers a
//! worker ten times slower less than half its share; a user without
//! CAP_BPF is refused in one line that says so.

use std::os::unix::process::CommandExt;

use crate::common::{assert_conserved, col, harness, is_root, needs, num, output_within, run, scratch, serial, show};

/// Whether this machine loads and attaches the steering programs (both
/// kinds), as `harness doctor` probes them.
fn have_ebpf() -> bool {
    let o = harness().arg("doctor").output().expect("harness doctor");
    let out = String::from_utf8_lossy(&o.stdout);
    ["bpf SOCKET_FILTER", "bpf SK_REUSEPORT"]
        .iter()
        .all(|cap| out.lines().any(|l| l.starts_with("ok") && l.contains(cap)))
}

/// A conserved run of 4 reuseport-ebpf-rr workers, or `None` where this
/// machine cannot load the program (off CI).
fn rr_run(name: &str, concurrency: &str, connections: u64) -> Option<RunOf> {
    if !needs(have_ebpf(), "eBPF socket filters on SO_REUSEPORT groups") {
        return None;
    }
    let n = connections.to_string();
    let args = [
        "--model",
        "reuseport-ebpf-rr",
        "--workers",
        "4",
        "--concurrency",
        concurrency,
        "--connections",
        &n,
    ];
    let (o, dir) = run(name, &args);
    let (rows, s) = assert_conserved(&o, &dir, connections);
    Some((o, dir, rows, s))
}

type Row = std::collections::HashMap<String, String>;
type RunOf = (std::process::Output, std::path::PathBuf, Vec<Row>, Row);

#[test]
fn ebpf_rr_gives_a_serial_clients_connections_in_exact_turns() {
    let _g = serial();
    let Some((o, dir, rows, _)) = rr_run("ebpf-rr-serial", "1", 3000) else {
        return;
    };
    for (i, a) in col(&rows, "accepted").iter().enumerate() {
        assert!(a.abs_diff(750) <= 1, "worker {i} took {a} of 3000: {}", show(&o));
    }
    // One socket per worker, as reuseport.
    let inodes = col(&rows, "listen_inode");
    let mut distinct = inodes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "a listener each: {inodes:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ebpf_rr_stays_within_one_of_an_even_split_when_saturated() {
    let _g = serial();
    let Some((o, dir, rows, s)) = rr_run("ebpf-rr-saturated", "64", 20000) else {
        return;
    };
    // A SYN the kernel dropped and the client sent again takes another turn.
    let retried = num(&s, "kernel_syn_retrans") as u64;
    for (i, a) in col(&rows, "accepted").iter().enumerate() {
        assert!(
            a.abs_diff(5000) <= 1 + retried,
            "worker {i} took {a} of 20000 ({retried} SYNs retransmitted): {}",
            show(&o)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ebpf_least_offers_a_slow_worker_less_than_half_its_share() {
    let _g = serial();
    if !needs(have_ebpf(), "eBPF SK_REUSEPORT programs") {
        return;
    }
    let shares = crate::models_dispatch_mutex::slow_worker_shares("reuseport-ebpf-least");
    // As dispatch-least: fair share 0.25, by capacity about 1/31; under
    // 1/(2N) = 0.125 with room to spare, also with one core kept busy.
    assert!(shares[0] < 0.125, "the slow worker got {:.3}: {shares:.3?}", shares[0]);
}

/// A rolling restart with net.ipv4.tcp_migrate_req off: plain reuseport
/// resets what waits on each closing socket (faults.rs checks that), while
/// a SELECT_OR_MIGRATE program moves it to a live socket and nothing is
/// lost.
#[test]
fn ebpf_migrate_loses_nothing_in_a_rolling_restart_without_tcp_migrate_req() {
    let _g = serial();
    if !needs(have_ebpf(), "eBPF SK_REUSEPORT programs")
        || !needs(is_root(), "root (tcp_migrate_req off in the run's namespace)")
    {
        return;
    }
    let (o, dir) = crate::faults::reload_run("ebpf-migrate-churn", "reuseport-ebpf-migrate", "off");
    assert!(o.status.success(), "{}", show(&o));
    let s = crate::common::summary(&dir);
    assert_eq!(s["errors"], "0", "nothing lost: {}", show(&o));
    assert_eq!(s["conserved"], "true", "{}", show(&o));
    // needs a quiet machine, as faults.rs's reuseport check: something
    // waits on each socket as it closes only while the generator keeps the
    // queues full (about 20 on each with a 1 ms service).
    assert!(
        num(&s, "kernel_migrate_req_success") > 0.0,
        "the program moved the queued connections: {}",
        show(&o)
    );
    assert_eq!(num(&s, "kernel_migrate_req_failure"), 0.0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_cap_bpf_the_ebpf_models_are_refused_in_one_line() {
    if !is_root() {
        eprintln!("skipped: only root can run the harness as another user");
        return;
    }
    for model in ["reuseport-ebpf-rr", "reuseport-ebpf-least", "reuseport-ebpf-migrate"] {
        refused_as_nobody(model);
    }
}

fn refused_as_nobody(model: &str) {
    let out = scratch(&format!("{model}-nobody"));
    let mut cmd = harness();
    cmd.args([
        "run",
        "--model",
        model,
        "--connections",
        "10",
        "--out",
        out.to_str().unwrap(),
    ])
    .uid(65534)
    .gid(65534);
    let o = output_within(&mut cmd, std::time::Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("--model {model} ")) && stderr.contains("CAP_BPF"),
        "{stderr}"
    );
    assert!(!out.exists(), "a refused run writes nothing");
}
