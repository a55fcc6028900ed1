//! End-to-end tests of `dispatch-least` and `accept-mutex` (with `dispatch-rr`
//! as the baseline for a slow worker): each checked by its signature and by
//! conservation, through the `harness` binary (it forks while
//! single-threaded; this test process is not). Every test takes the serial
//! lock, so that no two distributions are measured side by side on two cores.

use std::collections::HashMap;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::common::{
    alive, children, col, harness, load_running, run, scratch, serial, show, state, summary, wait_until, wait_within,
};

/// Runs `harness run` with `args`, asserts it passed conservation, and
/// returns its workers.csv rows and summary row.
fn conserved_run(
    name: &str,
    args: &[&str],
    connections: u64,
) -> (Vec<HashMap<String, String>>, HashMap<String, String>, Output) {
    let (o, dir) = run(name, args);
    let (rows, s) = crate::common::assert_conserved(&o, &dir, connections);
    let _ = std::fs::remove_dir_all(&dir);
    (rows, s, o)
}

/// Worker 0 is 10x slower (sleep 10 ms against 1 ms per request); returns
/// each worker's share of the connections (a dispatcher's hand-offs
/// checked against the takes).
pub(crate) fn slow_worker_shares(model: &str) -> Vec<f64> {
    let (rows, _, _) = conserved_run(
        &format!("slow-{model}"),
        &[
            "--model",
            model,
            "--workers",
            "4",
            "--concurrency",
            "16",
            "--connections",
            "3000",
            "--service",
            "sleep:1ms",
            "--slow-worker",
            "0:10",
        ],
        3000,
    );
    let accepted = col(&rows, "accepted");
    let total: u64 = accepted.iter().sum();
    let shares: Vec<f64> = accepted.iter().map(|a| *a as f64 / total as f64).collect();
    eprintln!("{model}, worker 0 10x slower: accepted {accepted:?}, shares {shares:.3?}");
    if model.starts_with("dispatch-") {
        assert_eq!(
            col(&rows, "dispatched"),
            accepted,
            "{model}: hand-offs differ from takes"
        );
    }
    shares
}

#[test]
fn dispatch_least_offers_a_slow_worker_less_than_half_its_share() {
    let _g = serial();
    let shares = slow_worker_shares("dispatch-least");
    // needs a quiet machine: which worker has the fewest open connections
    // depends on how fast each one gets through its sleeps. Fair share 0.25;
    // by capacity the slow worker would get about 1/31 (0.03), so the 0.125
    // bound holds with room to spare, also with one core kept busy.
    assert!(shares[0] < 0.125, "the slow worker got {:.3}: {shares:.3?}", shares[0]);
    // Each fast one gets more than the slow one. (How evenly the fast ones
    // share the rest is the scheduler's: one it holds up keeps its
    // connections open longer and is offered fewer; on this loaded machine
    // 0.350 / 0.246 / 0.356 was seen.)
    for s in &shares[1..] {
        assert!(*s > shares[0], "{shares:.3?}");
    }
}

#[test]
fn dispatch_rr_gives_a_slow_worker_its_full_share() {
    let _g = serial();
    let shares = slow_worker_shares("dispatch-rr");
    // Round robin is exact whatever the timing (3000 = 4 x 750).
    for s in &shares {
        assert!((s - 0.25).abs() < 0.01, "round robin is not even: {shares:.3?}");
    }
}

fn load_args(model: &str) -> Vec<&str> {
    vec![
        "--model",
        model,
        "--workers",
        "4",
        "--concurrency",
        "32",
        "--connections",
        "20000",
    ]
}

#[test]
fn dispatch_least_conserves_and_counts_every_hand_off() {
    let _g = serial();
    let (rows, s, _) = conserved_run("least-load", &load_args("dispatch-least"), 20000);
    let accepted = col(&rows, "accepted");
    eprintln!(
        "dispatch-least at concurrency 32: accepted {accepted:?}, jain {}",
        s["jain"]
    );
    assert_eq!(
        col(&rows, "dispatched"),
        accepted,
        "the dispatcher's counts differ from the workers'"
    );
    // needs a quiet machine: equal workers, balanced on load, are close to
    // even (Jain 0.99 here) only while none is held up by the scheduler: one
    // held up keeps its connections open and is offered fewer. On this
    // shared machine, loaded by others, 3926 / 3588 / 6142 / 6344 (Jain
    // 0.94) was seen (with one core kept busy, Jain stayed above 0.95). So:
    // no worker is starved, each gets at least half the mean.
    let mean = 20000.0 / accepted.len() as f64;
    assert!(
        accepted.iter().all(|a| *a as f64 >= mean / 2.0),
        "a worker was starved: {accepted:?}, jain {}",
        s["jain"]
    );
}

/// What every accept-mutex run shows: no wakeup without the lock, none
/// wasted, only the holder's epoll set ever holds the listener (tagged with
/// its own index), and the lock never held by two at once.
fn check_mutex_signature(rows: &[HashMap<String, String>], s: &HashMap<String, String>, label: &str) {
    let accepted = col(rows, "accepted");
    let wakeups = col(rows, "wakeups");
    let takes = col(rows, "lock_acquisitions");
    eprintln!(
        "accept-mutex {label}: accepted {accepted:?}, lock acquisitions {takes:?}, wakeups {wakeups:?}, \
         spurious {:?}, poll_overlaps {}",
        col(rows, "spurious_wakeups"),
        s["poll_overlaps"]
    );
    assert_eq!(
        s["poll_overlaps"], "0",
        "{label}: two workers polled the listener at once"
    );
    for (i, r) in rows.iter().enumerate() {
        // (+1: the lock may have been taken just before the measured load
        // began, and its wakeup fall inside it.)
        assert!(wakeups[i] <= takes[i] + 1, "{label}: worker {i} woke without the lock");
        // Accepting needs the lock: a worker that accepted held it.
        assert!(accepted[i] == 0 || takes[i] > 0, "{label}: worker {i}");
        // The snapshot of /proc shows the listener in the holder's set only,
        // under its own tag.
        let owner = &r["epoll_owner"];
        assert!(
            owner.is_empty() || *owner == i.to_string(),
            "{label}: worker {i} owner {owner}"
        );
    }
    assert_eq!(col(rows, "spurious_wakeups").iter().sum::<u64>(), 0, "{label}");
    let inodes = col(rows, "listen_inode");
    assert!(inodes.iter().all(|i| *i == inodes[0]), "{label}: {inodes:?}");
}

#[test]
fn accept_mutex_conserves_under_load_and_passes_the_lock_around() {
    let _g = serial();
    let (rows, s, _) = conserved_run("mutex-load", &load_args("accept-mutex"), 20000);
    check_mutex_signature(&rows, &s, "concurrency 32");
    // needs a quiet machine, barely: over 20000 connections the lock changes
    // hands unless one worker wins every try.
    let takers = col(&rows, "lock_acquisitions").iter().filter(|t| **t > 0).count();
    assert!(takers >= 2, "one worker kept the lock");
    assert!(col(&rows, "accepted").iter().filter(|a| **a > 0).count() >= 2);
}

#[test]
fn accept_mutex_conserves_with_a_serial_client() {
    let _g = serial();
    let (rows, s, _) = conserved_run(
        "mutex-serial",
        &[
            "--model",
            "accept-mutex",
            "--workers",
            "4",
            "--concurrency",
            "1",
            "--gap",
            "200us",
            "--connections",
            "1000",
        ],
        1000,
    );
    check_mutex_signature(&rows, &s, "serial client");
    // One connection at a time: each wakeup found exactly one.
    assert_eq!(col(&rows, "wakeups").iter().sum::<u64>(), 1000);
}

/// Whether an epoll set of `pid` watches anything: for an accept-mutex
/// worker, that it holds the lock (it registers the listener only then).
fn polls_the_listener(pid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read_to_string(e.path())
            .map(|info| info.lines().any(|l| l.starts_with("tfd:")))
            .unwrap_or(false)
    })
}

fn signal(pid: u32, sig: i32) {
    sys::kill(pid as i32, sig).expect("kill(2)");
}

/// A worker SIGKILLed while it holds the lock leaves it held: the others
/// never accept again (a limitation, as in nginx without its master's
/// force-unlock). The run must still end on its own, fail its conservation
/// check, and leave no process behind.
#[test]
fn a_lock_holder_killed_mid_run_does_not_wedge_the_harness() {
    let _g = serial();
    let out = scratch("mutex-killed-holder");
    let mut child = harness()
        .args([
            "run",
            "--model",
            "accept-mutex",
            "--workers",
            "4",
            "--concurrency",
            "4",
            "--duration",
            "3s",
            "--timeout",
            "500ms",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Hunt while the load runs: once the fleet is forked and the load
    // generator's threads exist, not after a guessed time.
    let mut workers = Vec::new();
    let going = wait_until(Duration::from_secs(30), || {
        workers = children(pid);
        workers.len() == 4 && load_running(pid)
    });
    assert!(going, "the fleet or its load did not start: {workers:?}");

    // Freeze workers one by one until one is caught holding the lock, then
    // kill it. Bounded in rounds, and over once the run has ended.
    let mut killed = None;
    'hunt: for _round in 0..1000 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        for &w in &workers {
            signal(w, libc::SIGSTOP);
            let stopped = wait_until(Duration::from_millis(500), || state(w) == Some('T'));
            if stopped && polls_the_listener(w) {
                signal(w, libc::SIGKILL);
                killed = Some(w);
                break 'hunt;
            }
            signal(w, libc::SIGCONT);
        }
    }
    let Some(killed) = killed else {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!(
            "no worker was caught holding the lock while the run lasted: {}",
            show(&o)
        );
    };

    // Liveness bound: the 3 s run ends on its own about 0.5 s (the timeout)
    // after its end; a wedged harness would never end.
    let status = wait_within(&mut child, Duration::from_secs(60));
    let o = child.wait_with_output().unwrap();
    eprintln!("killed lock holder {killed}; the harness ended with {status}");
    assert_eq!(status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("conservation"),
        "{}",
        show(&o)
    );
    wait_until(Duration::from_secs(10), || workers.iter().all(|w| !alive(*w)));
    let left: Vec<_> = workers.iter().filter(|w| alive(**w)).collect();
    assert!(left.is_empty(), "workers outlived the harness: {left:?}");
    // The files are still written, marked as failing conservation.
    assert_eq!(summary(&out)["conserved"], "false");
    let _ = std::fs::remove_dir_all(out);
}
