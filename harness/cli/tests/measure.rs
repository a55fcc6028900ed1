//! End-to-end tests of what makes the measurements trustworthy: the open
//! loop's rate and its corrected latency, keep-alive accounting, the time
//! series, the HdrHistogram logs, warm-up and source rotation.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{col, num, read_csv, run, serial, show, summary};

/// Per-worker sums of a time series column.
fn series_sums(dir: &Path, column: &str, workers: usize) -> Vec<u64> {
    let mut sums = vec![0u64; workers];
    for row in read_csv(&dir.join("timeseries.csv")) {
        let w: usize = row["worker"].parse().unwrap();
        sums[w] += row[column].parse::<u64>().unwrap();
    }
    sums
}

/// The saturated connection rate of a 4-worker reuseport fleet, measured.
fn capacity() -> f64 {
    let (o, dir) = run(
        "capacity",
        &["--model", "reuseport", "--concurrency", "64", "--duration", "1s"],
    );
    assert!(o.status.success(), "{}", show(&o));
    num(&summary(&dir), "conn_per_s")
}

#[test]
fn open_loop_holds_its_rate_and_corrected_tracks_uncorrected_when_unsaturated() {
    let _g = serial();
    let rate = (capacity() * 0.2).round();
    let r = rate.to_string();
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
        let expected = rate * 3.0;
        let started = num(&s, "connections");
        if arrivals == "constant" {
            assert!(
                (started - expected).abs() <= 0.01 * expected,
                "constant arrivals: {started} connections, expected {expected} (+-1%)"
            );
        } else {
            let sd = expected.sqrt();
            assert!(
                (started - expected).abs() <= 3.0 * sd,
                "poisson arrivals: {started} connections, expected {expected} +- {:.0}",
                3.0 * sd
            );
        }
        assert_eq!(s["completed"], s["connections"], "{arrivals}");
        assert_eq!(s["dropped"], "0");
        let (c, u) = (num(&s, "total_p50_us"), num(&s, "uncorrected_p50_us"));
        assert!(
            c >= u && c <= u * 1.5 + 100.0,
            "{arrivals}: corrected p50 {c} vs uncorrected {u}"
        );
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
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    let corrected = num(&s, "total_p99_us");
    let uncorrected = num(&s, "uncorrected_p99_us");
    assert!(
        corrected >= 180_000.0,
        "corrected p99 {corrected} us did not rise to the 300 ms stall"
    );
    assert!(
        uncorrected <= 60_000.0,
        "uncorrected p99 {uncorrected} us rose with the stall"
    );
    assert!(num(&s, "late") > 100.0, "no late arrivals: {s:?}");
    // The records say when the stall happened.
    let w = &read_csv(&dir.join("workers.csv"))[0];
    let (from, to) = (num(w, "stall_from_ms"), num(w, "stall_to_ms"));
    assert!((1000.0..1100.0).contains(&from), "stall began at {from} ms");
    assert!((to - from - 300.0).abs() < 50.0, "stall lasted {} ms", to - from);
    let quiet: u64 = read_csv(&dir.join("timeseries.csv"))
        .iter()
        .filter(|r| (1150.0..1250.0).contains(&num(r, "t_ms")))
        .map(|r| r["accepted"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(quiet, 0, "the stalled worker accepted during its stall");
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
    assert!(
        intervals.len() >= 8,
        "{} intervals in a 1 s run at 100 ms",
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
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir);
    assert_eq!(s["completed"], "2000");
    assert_eq!(s["conserved"], "true");
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    assert!(meta.contains("127.0.0.5"), "{meta}");
    assert!(meta.contains("net.ipv4.tcp_migrate_req") && meta.contains("loadgen_cpu_ms"));
}
