//! End-to-end tests of what makes the measurements trustworthy: the open
//! loop's rate and its corrected latency, keep-alive accounting, the time
//! series, the HdrHistogram logs, warm-up and source rotation.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{col, num, read_csv, run, serial, show, summary};

/// Per-worker sums of a time series column.
fn series_sums(dir: &Path, column: &str, workers: usize) -> Vec<u64> {
    let mut sums = vec![0u64; workers];
    for row in read_csv(&dir.join("timeseries.csv")) {
        let w: usize = row["worker"].parse().unwrap();
        sums[w] += row[column].parse::<u64>().unwrap();
    }
    sums
}

/// The rate of the open-loop test: fixed, so that a seeded Poisson schedule
/// is the same in every run (its count is then not a matter of chance), and
/// unsaturated by far: a 4-worker reuseport fleet serves about 30000 conn/s
/// here.
const RATE: f64 = 2000.0;

#[test]
fn open_loop_holds_its_rate_and_corrected_tracks_uncorrected_when_unsaturated() {
    let _g = serial();
    let r = RATE.to_string();
    for arrivals in ["constant", "poisson"] {
        let (o, dir) = run(
            &format!("open-{arrivals}"),
            &[
                "--model",
                "reuseport",
                "--rate",
                &r,
                "--arrivals",
                arrivals,
                "--duration",
                "3s",
                "--seed",
                "7",
            ],
        );
        assert!(o.status.success(), "{arrivals}: {}", show(&o));
        let s = summary(&dir);
        let (started, dropped) = (num(&s, "connections"), num(&s, "dropped"));
        // Every arrival of the schedule (those before the 3 s end, fixed in
        // advance) is started or dropped, however late the generator ran:
        // scheduled == started + dropped, and the schedule is R x T long.
        let scheduled = started + dropped;
        let expected = RATE * 3.0;
        if arrivals == "constant" {
            assert!(
                (scheduled - expected).abs() <= 1.0,
                "constant arrivals: {scheduled} scheduled ({started} started + {dropped} dropped), expected {expected}"
            );
        } else {
            // The seeded schedule: the same count every run.
            let sd = expected.sqrt();
            assert!(
                (scheduled - expected).abs() <= 3.0 * sd,
                "poisson arrivals: {scheduled} scheduled, expected {expected} +- {:.0}",
                3.0 * sd
            );
        }
        // started == completed + errors, and nothing failed.
        assert_eq!(num(&s, "completed") + num(&s, "errors"), started, "{arrivals}: {s:?}");
        assert_eq!(s["errors"], "0", "{arrivals}");
        // The corrected latency runs from the intended start, the
        // uncorrected from the actual one, which is never earlier: corrected
        // >= uncorrected for every connection, so for every quantile.
        let (c, u) = (num(&s, "total_p50_us"), num(&s, "uncorrected_p50_us"));
        assert!(c >= u, "{arrivals}: corrected p50 {c} < uncorrected {u}");
        // needs a quiet machine: unsaturated, they differ only by how late
        // the generator's thread woke for each arrival, well under a
        // millisecond at the median, also with one core kept busy. Whether
        // the run was unsaturated is the run's own record: no arrival found
        // the cap of open connections full (late) or was dropped. (2000/s
        // against a cap of 1000 fills it only if the machine stops the fleet
        // for half a second, which this shared machine was seen to do once:
        // 606 late, p99 0.8 s. Then the comparison says nothing.)
        // (5 ms of slack: with both cores shared, a thread woke up to 1.3 ms
        // late at the median once; a saturated run is late by far more.)
        if s["late"] == "0" && s["dropped"] == "0" {
            assert!(
                c <= u * 1.5 + 5000.0,
                "{arrivals}: corrected p50 {c} vs uncorrected {u}"
            );
        } else {
            eprintln!(
                "{arrivals}: the machine held the run up ({} late, {} dropped, p99 {} us): p50s not compared",
                s["late"], s["dropped"], s["total_p99_us"]
            );
        }
    }
}

#[test]
fn a_stalled_worker_shows_in_corrected_latency_only() {
    let _g = serial();
    // One worker, 1000 arrivals/s, at most 8 open: while the worker stalls
    // for 300 ms, arrivals past the cap wait, and only the corrected latency
    // (from each arrival's intended start) counts that wait.
    let (o, dir) = run(
        "stall",
        &[
            "--model",
            "shared-blocking",
            "--workers",
            "1",
            "--rate",
            "1000",
            "--arrivals",
            "constant",
            "--max-inflight",
            "8",
            "--duration",
            "3s",
            "--stall-worker",
            "0:1s:300ms",
            "--interval",
            "20ms",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    // The records say when the stall happened: at the first connection the
    // worker took from 1 s on, and its sleep ran to the planned end (a
    // sleep never ends early), however late the scheduler let it begin.
    let w = &read_csv(&dir.join("workers.csv"))[0];
    let (from, to) = (num(w, "stall_from_ms"), num(w, "stall_to_ms"));
    assert!(
        (1000.0..1300.0).contains(&from) && to >= 1300.0,
        "stall {from}..{to} ms"
    );
    let stall_us = (to - from) * 1000.0;
    // Arrivals during the stall, all but the 8 the cap lets in, wait for its
    // end, so well over 1% of the connections (rate x stall, about 300 of
    // 3000) wait more than 0.6 x the stall from their intended start: a
    // lower bound, which a slow scheduler only makes easier.
    let corrected = num(&s, "total_p99_us");
    let uncorrected = num(&s, "uncorrected_p99_us");
    assert!(
        corrected >= 0.6 * stall_us,
        "corrected p99 {corrected} us did not rise to the {stall_us} us stall"
    );
    // Once started, only the at most 8 connections open when the stall
    // began (under 1%) wait through it: the uncorrected p99 stays under the
    // stall. (A bound the machine could break only by holding up 1% of the
    // connections for as long as the stall by itself; the cap also keeps
    // what a hiccup holds up to 8 at a time.)
    assert!(
        uncorrected < stall_us,
        "uncorrected p99 {uncorrected} us rose with the {stall_us} us stall"
    );
    assert!(corrected >= uncorrected);
    // Arrivals that found the cap full started late: every arrival of the
    // stall but the 8 the cap let in (about 290); half of that, as a bound.
    let late = num(&s, "late");
    assert!(
        late >= (stall_us / 1000.0 - 8.0) / 2.0,
        "{late} late arrivals for a {stall_us} us stall: {s:?}"
    );
    assert_eq!(num(&s, "connections") + num(&s, "dropped"), 3000.0, "scheduled");
    // No accept in a sample whose interval lies inside the stall. (Its first
    // half only: the series' clock starts a moment after the stall's, so the
    // stall's end is not compared with a sample's time.)
    let series = read_csv(&dir.join("timeseries.csv"));
    let inside: Vec<u64> = series
        .windows(2)
        .filter(|p| num(&p[0], "t_ms") >= from + 0.05 && num(&p[1], "t_ms") <= (from + to) / 2.0)
        .map(|p| p[1]["accepted"].parse::<u64>().unwrap())
        .collect();
    // (Checked on the samples the sampler took: a hiccup of the machine can
    // leave none inside, which is no failure of the worker.)
    eprintln!("{} samples inside the stall's first half", inside.len());
    assert!(
        inside.iter().all(|a| *a == 0),
        "the stalled worker accepted during its stall: {inside:?}"
    );
}

#[test]
fn keep_alive_counts_requests_and_connections_apart() {
    let _g = serial();
    for model in ["shared-epoll", "reuseport", "dispatch-rr"] {
        let (o, dir) = run(
            &format!("ka-{model}"),
            &[
                "--model",
                model,
                "--concurrency",
                "16",
                "--connections",
                "500",
                "--requests-per-conn",
                "10",
            ],
        );
        assert!(o.status.success(), "{model}: {}", show(&o));
        let s = summary(&dir);
        assert_eq!(s["completed"], "500", "{model}");
        assert_eq!(s["requests"], "5000", "{model}");
        assert_eq!(s["conserved"], "true", "{model}");
        let rows = read_csv(&dir.join("workers.csv"));
        let accepted = col(&rows, "accepted");
        let requests = col(&rows, "requests");
        for (a, r) in accepted.iter().zip(&requests) {
            assert_eq!(*r, 10 * a, "{model}: a connection's requests went to another worker");
        }
        assert_eq!(col(&rows, "attributed_requests"), requests, "{model}");
    }
}

#[test]
fn time_series_sums_to_the_final_counts_for_every_model() {
    let _g = serial();
    for model in [
        "shared-blocking",
        "shared-epoll",
        "epoll-exclusive",
        "reuseport",
        "dispatch-rr",
    ] {
        let (o, dir) = run(
            &format!("ts-{model}"),
            &[
                "--model",
                model,
                "--concurrency",
                "32",
                "--connections",
                "8000",
                "--interval",
                "20ms",
            ],
        );
        assert!(o.status.success(), "{model}: {}", show(&o));
        let rows = read_csv(&dir.join("workers.csv"));
        assert_eq!(series_sums(&dir, "accepted", 4), col(&rows, "accepted"), "{model}");
        assert_eq!(series_sums(&dir, "requests", 4), col(&rows, "requests"), "{model}");
        assert_eq!(
            series_sums(&dir, "spurious_wakeups", 4),
            col(&rows, "spurious_wakeups"),
            "{model}"
        );
        let samples = read_csv(&dir.join("timeseries.csv")).len() / 4;
        assert!(samples >= 2, "{model}: only {samples} samples");
    }
}

#[test]
fn latency_logs_parse_back_with_the_same_totals() {
    let _g = serial();
    let (o, dir) = run(
        "hlog",
        &[
            "--model",
            "reuseport",
            "--concurrency",
            "16",
            "--duration",
            "1s",
            "--interval",
            "100ms",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    let requests: u64 = s["requests"].parse().unwrap();
    let intervals = records::hlog::read(&dir.join("latency.hlog")).unwrap();
    // Every interval from the load's start to its end is logged, empty or
    // not, and the load ran at least until its 1 s end and for at least its
    // measured duration: at least 10 intervals, and as many as 100 ms fit in
    // duration_s, rounded up, however the scheduler stretched the run.
    // (-1e-3: duration_s has 4 decimals.)
    let duration = num(&s, "duration_s");
    let least = (duration * 10.0 - 1e-3).ceil() as usize;
    assert!(
        intervals.len() >= least.max(10),
        "{} intervals in a {duration} s run at 100 ms",
        intervals.len()
    );
    let logged: u64 = intervals.iter().map(|h| h.histogram.len()).sum();
    assert_eq!(logged, requests, "interval log total");
    for pair in intervals.windows(2) {
        assert!(pair[0].start < pair[1].start, "intervals out of order");
    }
    let overall = records::hlog::read(&dir.join("histograms.hlog")).unwrap();
    let by_tag: HashMap<String, u64> = overall
        .iter()
        .map(|h| (h.tag.clone().unwrap_or_default(), h.histogram.len()))
        .collect();
    assert_eq!(by_tag["total"], requests);
    assert_eq!(by_tag["connect"], s["completed"].parse::<u64>().unwrap());
    let per_worker: u64 = (0..4).map(|w| by_tag[&format!("worker{w}-total")]).sum();
    assert_eq!(per_worker, requests);
    let p99 = overall.iter().find(|h| h.tag.as_deref() == Some("total")).unwrap();
    assert_eq!(
        p99.histogram.value_at_quantile(0.99),
        s["total_p99_us"].parse::<u64>().unwrap()
    );
}

#[test]
fn warmup_is_left_out_of_every_figure() {
    let _g = serial();
    let (o, dir) = run(
        "warmup",
        &[
            "--model",
            "shared-epoll",
            "--concurrency",
            "8",
            "--connections",
            "3000",
            "--warmup",
            "500ms",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    assert_eq!(s["completed"], "3000");
    assert_eq!(s["accepted"], "3000");
    let rows = read_csv(&dir.join("workers.csv"));
    assert_eq!(col(&rows, "accepted").iter().sum::<u64>(), 3000);
    assert_eq!(series_sums(&dir, "accepted", 4).iter().sum::<u64>(), 3000);
}

#[test]
fn source_rotation_over_loopback_addresses() {
    let _g = serial();
    let (o, dir) = run(
        "sources",
        &[
            "--model",
            "reuseport",
            "--concurrency",
            "8",
            "--connections",
            "2000",
            "--sources",
            "127.0.0.2-127.0.0.5",
        ],
    );
    crate::common::assert_conserved(&o, &dir, 2000);
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    assert!(meta.contains("127.0.0.5"), "{meta}");
    assert!(meta.contains("net.ipv4.tcp_migrate_req") && meta.contains("loadgen_cpu_ms"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A server that answers every request with `x-worker: <the last octet of
/// the client's address>`: what the server saw of the source rotation.
fn source_echo() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<std::thread::JoinHandle<()>>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handles = (0..4)
        .map(|_| {
            let l = l.try_clone().unwrap();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (mut s, peer) = match l.accept() {
                        Ok(c) => c,
                        Err(_) => {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            continue;
                        }
                    };
                    let _ = s.set_nonblocking(false);
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 512];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let octet = match peer.ip() {
                        std::net::IpAddr::V4(v4) => v4.octets()[3],
                        std::net::IpAddr::V6(_) => 0,
                    };
                    let _ = s.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-worker: {octet}\r\nconnection: close\r\n\r\nok"
                        )
                        .as_bytes(),
                    );
                }
            })
        })
        .collect();
    (addr, stop, handles)
}

#[test]
fn connections_come_from_every_source_in_rotation() {
    let _g = serial();
    let (addr, stop, handles) = source_echo();
    let (o, dir) = run(
        "sources-seen",
        &[
            "--target",
            &addr.to_string(),
            "--concurrency",
            "8",
            "--connections",
            "2000",
            "--sources",
            "127.0.0.2-127.0.0.5",
        ],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(o.status.success(), "{}", show(&o));
    // The server saw exactly the four sources, each about a quarter (each
    // load generator thread rotates over all four).
    let rows = read_csv(&dir.join("workers.csv"));
    let mut seen: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r["worker_id"].clone(), r["accepted"].parse().unwrap()))
        .collect();
    seen.sort();
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["2", "3", "4", "5"], "{seen:?}");
    assert_eq!(seen.iter().map(|(_, n)| n).sum::<u64>(), 2000);
    assert!(seen.iter().all(|(_, n)| *n >= 250), "{seen:?}");
    let _ = std::fs::remove_dir_all(dir);
}
