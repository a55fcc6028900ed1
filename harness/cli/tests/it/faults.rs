//! Worker faults during a run (`--kill-worker`, `--respawn`,
//! `--rolling-restart`), checked by what the kernel does with each model's
//! queue: a shared queue outlives any worker, a killed or closed
//! SO_REUSEPORT socket resets what was queued on it (unless
//! net.ipv4.tcp_migrate_req moves it). Whatever the kernel loses, the books
//! must balance: started = completed + failed, and every surviving worker's
//! count equals the responses that name it.

use std::path::Path;

use crate::common::*;

fn faults(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    read_csv(&dir.join("faults.csv"))
}

/// Started = completed + failed, from the run's summary, and the harness
/// said conservation held.
fn balanced(o: &std::process::Output, dir: &Path) -> (u64, u64) {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
    let s = summary(dir);
    assert_eq!(s["conserved"], "true", "{}", show(o));
    let completed = num(&s, "completed") as u64;
    let errors = num(&s, "errors") as u64;
    let classes: u64 = [
        "err_refused",
        "err_reset",
        "err_timeout",
        "err_addr_not_available",
        "err_malformed",
        "err_other",
    ]
    .iter()
    .map(|c| num(&s, c) as u64)
    .sum();
    assert_eq!(errors, classes, "failures by class add up");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "{} started = {completed} completed + {errors} failed",
            completed + errors
        )) || (errors == 0 && stdout.contains("conservation: ok")),
        "{stdout}"
    );
    (completed, errors)
}

/// When the run's fault `event` (`killed`, `started`, `retired`) happened to
/// `worker`, in ms since the load began (faults.csv).
fn fault_at(dir: &Path, worker: usize, event: &str) -> f64 {
    let f = faults(dir);
    let e = f
        .iter()
        .find(|e| e["worker"] == worker.to_string() && e["event"] == event)
        .unwrap_or_else(|| panic!("no {event} event for worker {worker}: {f:?}"));
    num(e, "t_ms")
}

/// `worker`'s accepts in each sample of timeseries.csv whose interval lies
/// wholly after `t_ms`, or wholly before it (`after` false). The faults are
/// injected by the sampler itself, between one sample and the next, and
/// `t_ms` is read just before the fault: a sample taken at or after `t_ms`
/// was taken after the fault, one taken before it was taken before. (0.06:
/// timeseries.csv has one decimal, faults.csv three.) What the scheduler
/// does decides only how many samples fall on each side.
fn accepted_around(dir: &Path, worker: usize, t_ms: f64, after: bool) -> Vec<u64> {
    let mine: Vec<_> = read_csv(&dir.join("timeseries.csv"))
        .into_iter()
        .filter(|r| r["worker"] == worker.to_string())
        .collect();
    mine.windows(2)
        .filter(|p| {
            if after {
                num(&p[0], "t_ms") >= t_ms + 0.06
            } else {
                num(&p[1], "t_ms") <= t_ms - 0.06
            }
        })
        .map(|p| num(&p[1], "accepted") as u64)
        .collect()
}

/// A killed worker accepted nothing after its death, and each of
/// `survivors` accepted something: the load went on without it. Both are
/// relations between the run's own records (faults.csv, the time series),
/// however late the kill came.
fn went_on_without(dir: &Path, killed: usize, survivors: &[usize], label: &str) {
    let at = fault_at(dir, killed, "killed");
    let dead = accepted_around(dir, killed, at, true);
    // The final sample, at the end of the load, always comes after the kill;
    // at least one more comes unless the kill fell in the load's last tick.
    assert!(!dead.is_empty(), "{label}: no sample after the kill at {at} ms");
    assert!(
        dead.iter().all(|a| *a == 0),
        "{label}: worker {killed} accepted after its death at {at} ms: {dead:?}"
    );
    for &w in survivors {
        let took: u64 = accepted_around(dir, w, at, true).iter().sum();
        assert!(took > 0, "{label}: worker {w} took nothing after the kill at {at} ms");
    }
}

/// The workers of a run are all gone once it returns.
fn all_gone(dir: &Path) {
    let workers = read_csv(&dir.join("workers.csv"));
    for pid in col(&workers, "pid") {
        assert!(!alive(pid as u32), "worker {pid} outlived the run");
    }
    for e in faults(dir) {
        let pid: u32 = e["pid"].parse().unwrap();
        assert!(!alive(pid), "{e:?} outlived the run");
    }
}

#[test]
fn killing_a_shared_blocking_worker_loses_no_queued_connection() {
    let _g = serial();
    let (o, dir) = run(
        "kill-shared",
        &[
            "--model",
            "shared-blocking",
            "--workers",
            "4",
            "--concurrency",
            "32",
            "--duration",
            "2s",
            "--kill-worker",
            "1@700ms",
        ],
    );
    let (completed, errors) = balanced(&o, &dir);
    // The shared queue survives the worker: at most the one connection it
    // was serving is lost.
    assert!(errors <= 1, "{errors} failed of {completed}: {}", show(&o));
    let f = faults(&dir);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0]["worker"].as_str(), f[0]["event"].as_str()), ("1", "killed"));
    // Never early (however late the sampler that injects it runs).
    let at: f64 = f[0]["t_ms"].parse().unwrap();
    assert!(at >= 700.0, "killed at {at} ms");
    // Worker 1 took nothing after it died; the others took the rest.
    went_on_without(&dir, 1, &[0, 2, 3], "shared-blocking");
    all_gone(&dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn killing_a_reuseport_worker_resets_its_queue_and_the_books_balance() {
    let _g = serial();
    // A 1 ms service time keeps each socket's queue full when the worker dies.
    let (o, dir) = run(
        "kill-reuseport",
        &[
            "--model",
            "reuseport",
            "--workers",
            "4",
            "--concurrency",
            "32",
            "--duration",
            "2s",
            "--service",
            "sleep:1ms",
            "--kill-worker",
            "2@700ms",
        ],
    );
    let (completed, errors) = balanced(&o, &dir);
    let s = summary(&dir);
    // Whatever the kernel resets (how many wait on the socket at that
    // instant varies, 0 included), it is reported as resets, never lost, and
    // no more can fail than were in flight.
    assert!(num(&s, "err_reset") <= errors as f64);
    assert!(
        errors <= 32 + 1,
        "more failed than were in flight: {errors} (completed {completed})"
    );
    // The surviving sockets took the rest: workers 0, 1, 3 went on.
    let workers = read_csv(&dir.join("workers.csv"));
    assert_eq!(workers.len(), 4);
    went_on_without(&dir, 2, &[0, 1, 3], "reuseport");
    all_gone(&dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_dispatcher_stops_handing_connections_to_a_dead_worker() {
    let _g = serial();
    for model in ["dispatch-rr", "dispatch-least"] {
        let (o, dir) = run(
            &format!("kill-{model}"),
            &[
                "--model",
                model,
                "--workers",
                "4",
                "--concurrency",
                "16",
                "--duration",
                "2s",
                "--kill-worker",
                "1@500ms",
            ],
        );
        let (completed, errors) = balanced(&o, &dir);
        // Lost: what the dead worker was serving and what waited in its
        // channel, at most the 16 in flight; not every fourth connection from
        // then on, as when the dispatcher kept handing it connections.
        assert!(errors <= 16, "{model}: {errors} failed of {completed}: {}", show(&o));
        // The others took every connection after the kill.
        went_on_without(&dir, 1, &[0, 2, 3], model);
        all_gone(&dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn respawn_starts_a_replacement_that_serves() {
    let _g = serial();
    let (o, dir) = run(
        "respawn",
        &[
            "--model",
            "reuseport",
            "--workers",
            "3",
            "--concurrency",
            "16",
            "--duration",
            "2s",
            "--kill-worker",
            "0@500ms",
            "--respawn",
        ],
    );
    balanced(&o, &dir);
    let f = faults(&dir);
    let events: Vec<(&str, &str, &str)> = f
        .iter()
        .map(|e| (e["worker"].as_str(), e["event"].as_str(), e["replaces"].as_str()))
        .collect();
    assert_eq!(events, [("0", "killed", ""), ("3", "started", "0")]);
    let workers = read_csv(&dir.join("workers.csv"));
    assert_eq!(workers.len(), 4, "the replacement has its own row");
    let replacement = workers.iter().find(|w| w["worker"] == "3").expect("worker 3");
    assert!(num(replacement, "accepted") > 0.0, "{replacement:?}");
    assert_eq!(replacement["pid"], f[1]["pid"]);
    // It took nothing before it was started (it waits on its channel until
    // then), and worker 0 nothing after its death.
    let before = accepted_around(&dir, 3, fault_at(&dir, 3, "started"), false);
    assert!(
        before.iter().all(|a| *a == 0),
        "the replacement served early: {before:?}"
    );
    went_on_without(&dir, 0, &[1, 2, 3], "respawn");
    all_gone(&dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rolling_restart_replaces_every_worker_and_shared_queues_lose_nothing() {
    let _g = serial();
    for model in ["shared-epoll", "reuseport", "accept-mutex", "dispatch-rr", "io-uring"] {
        let (o, dir) = run(
            &format!("rolling-{model}"),
            &[
                "--model",
                model,
                "--workers",
                "3",
                "--concurrency",
                "16",
                "--duration",
                "2s",
                "--rolling-restart",
                "500ms",
                // The restart moves one step per sample (start a
                // replacement, retire the old worker once it is ready):
                // sampling every 20 ms leaves the six steps over a second of
                // the run to finish in, however late the sampler runs.
                "--interval",
                "20ms",
            ],
        );
        let (_, errors) = balanced(&o, &dir);
        let f = faults(&dir);
        let events: Vec<(String, &str)> = f.iter().map(|e| (e["worker"].clone(), e["event"].as_str())).collect();
        let want: Vec<(String, &str)> = (0..3)
            .flat_map(|i| [((i + 3).to_string(), "started"), (i.to_string(), "retired")])
            .collect();
        assert_eq!(events, want, "{model}: one after another");
        let workers = read_csv(&dir.join("workers.csv"));
        assert_eq!(workers.len(), 6, "{model}");
        let replacements: Vec<f64> = workers
            .iter()
            .filter(|w| num(w, "worker") >= 3.0)
            .map(|w| num(w, "accepted"))
            .collect();
        if model == "io-uring" {
            // The first armed ring takes (nearly) everything: one replacement
            // at least served once the old workers were gone.
            assert!(replacements.iter().any(|a| *a > 0.0), "{model}: {replacements:?}");
        } else {
            assert!(
                replacements.iter().all(|a| *a > 0.0),
                "{model}: a replacement idle: {replacements:?}"
            );
        }
        if model != "reuseport" {
            // Retiring closes only a copy of the shared socket (or a
            // dispatcher stops handing the worker connections): nothing waits
            // on anything that closes.
            assert_eq!(errors, 0, "{model}: {}", show(&o));
        }
        all_gone(&dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn tcp_migrate_req_decides_whether_a_reuseport_reload_resets() {
    let _g = serial();
    let path = "/proc/sys/net/ipv4/tcp_migrate_req";
    let before = std::fs::read_to_string(path);
    if !crate::common::needs(before.is_ok(), path) {
        return;
    }
    let before = before.unwrap_or_default();
    if euid() != 0 {
        let (o, _) = run("migrate-noroot", &["--model", "reuseport", "--tcp-migrate-req", "on"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("needs root"));
        if !crate::common::needs(false, "root (to set net.ipv4.tcp_migrate_req)") {
            return;
        }
    }
    let mut resets = Vec::new();
    let mut migrated = Vec::new();
    // Each run sets the sysctl in its own network namespace (the host's is
    // never touched), so another harness's setting cannot reach it.
    // needs a quiet machine: without migration the kernel resets what waits
    // on each socket as it closes, and something waits there only while the
    // load generator keeps the queues full (about 20 on each, refilled
    // within a millisecond); three closes all finding an empty queue would
    // take the generator held up at each of them.
    for setting in ["off", "on"] {
        // A 1 ms service time keeps every socket's queue full at each close
        // (about 20 waiting on each of the three).
        let (o, dir) = reload_run(&format!("migrate-{setting}"), "reuseport", setting);
        balanced(&o, &dir);
        assert_eq!(std::fs::read_to_string(path).unwrap(), before, "the sysctl is restored");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!(
            meta["parameters"]["tcp_migrate_req"],
            serde_json::json!(setting == "on")
        );
        let s = summary(&dir);
        resets.push(num(&s, "err_reset") as u64);
        migrated.push((
            num(&s, "kernel_migrate_req_success") as u64,
            num(&s, "kernel_migrate_req_failure") as u64,
        ));
        all_gone(&dir);
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(
        resets[0] >= 1,
        "closing reuseport sockets reset nothing without migration: {resets:?}"
    );
    // With migration the kernel moves what waits (and counts it); a reset
    // then needs a migration the kernel says failed.
    assert_eq!(migrated[0], (0, 0), "nothing migrates without it");
    assert!(
        migrated[1].0 > 0,
        "with migration the queued connections move: {migrated:?}"
    );
    assert!(
        resets[1] <= migrated[1].1,
        "with migration only a failed migration resets: {resets:?} {migrated:?}"
    );
}

/// A rolling restart of 3 workers of `model` from 500 ms into a 2 s run at
/// concurrency 64, with tcp_migrate_req `setting` (on or off) in the run's
/// namespace; a 1 ms service time keeps every socket's queue full at each
/// close (about 20 waiting on each of the three).
pub(crate) fn reload_run(name: &str, model: &str, setting: &str) -> (std::process::Output, std::path::PathBuf) {
    run(
        name,
        &[
            "--model",
            model,
            "--workers",
            "3",
            "--concurrency",
            "64",
            "--duration",
            "2s",
            "--service",
            "sleep:1ms",
            "--rolling-restart",
            "500ms",
            "--tcp-migrate-req",
            setting,
        ],
    )
}

/// The effective uid, from /proc (no libc call in a test).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn fault_options_that_cannot_run_are_refused() {
    for (args, needle) in [
        (
            vec!["--model", "reuseport", "--respawn"],
            "--respawn needs --kill-worker",
        ),
        (vec!["--model", "reuseport", "--kill-worker", "4@1s"], "only 4 workers"),
        (vec!["--model", "reuseport", "--kill-worker", "1"], "IDX@T"),
        (vec!["--model", "reuseport", "--kill-worker", "1@soon"], "1@soon"),
        (
            vec![
                "--model",
                "shared-epoll",
                "--rolling-restart",
                "1s",
                "--worker-concurrency",
                "2",
            ],
            "--worker-concurrency 1",
        ),
        (
            vec![
                "--model",
                "shared-epoll",
                "--rolling-restart",
                "1s",
                "--fleet",
                "threads",
            ],
            "--fleet processes",
        ),
        (vec!["--model", "node-rr", "--rolling-restart", "1s"], "own fleets"),
    ] {
        let mut full = args.clone();
        full.extend(["--workers", "4", "--duration", "1s"]);
        let (o, dir) = run("refused", &full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!dir.exists(), "nothing written for a refused run");
    }
}

/// Workers listen on loopback unless `--bind` says otherwise, and then only
/// on another loopback address or every interface (the load still goes to
/// loopback); anything else is refused before anything starts.
#[test]
fn workers_listen_where_bind_says_and_only_there() {
    let (o, dir) = run(
        "bind-remote",
        &["--model", "reuseport", "--bind", "10.1.2.3", "--duration", "1s"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--bind 10.1.2.3"));
    assert!(!dir.exists());
    let _g = serial();
    let (o, dir) = run(
        "bind-lo2",
        &[
            "--model",
            "shared-blocking",
            "--workers",
            "2",
            "--bind",
            "127.0.0.2",
            "--connections",
            "500",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["parameters"]["bind"], "127.0.0.2");
    // The load went to where the workers listen: 127.0.0.2, every connection answered.
    assert_eq!(num(&summary(&dir), "completed"), 500.0);
    let _ = std::fs::remove_dir_all(dir);
}
