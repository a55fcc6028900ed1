//! The readable table a run prints to stdout.

use std::fmt::Write;

use crate::record::{SummaryRow, WorkerRow};

pub fn run(summary: &SummaryRow, workers: &[WorkerRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} workers, concurrency {}, {} connections in {:.2} s = {:.0} conn/s",
        summary.model,
        summary.workers,
        summary.concurrency,
        summary.completed,
        summary.duration_s,
        summary.conn_per_s
    );
    let _ = writeln!(
        s,
        "{:>6} {:>8} {:>9} {:>7} {:>8} {:>9} {:>8} {:>7} {:>7} {:>8} {:>8}",
        "worker",
        "pid",
        "accepted",
        "share",
        "wakeups",
        "spurious",
        "cpu_ms",
        "p50_us",
        "p99_us",
        "p999_us",
        "max_us"
    );
    for w in workers {
        let _ = writeln!(
            s,
            "{:>6} {:>8} {:>9} {:>6.1}% {:>8} {:>9} {:>8.0} {:>7} {:>7} {:>8} {:>8}",
            w.worker,
            w.pid,
            w.accepted,
            w.share * 100.0,
            w.wakeups,
            w.spurious_wakeups,
            w.cpu_ms,
            w.p50_us,
            w.p99_us,
            w.p999_us,
            w.max_us
        );
    }
    let _ = writeln!(
        s,
        "Jain {:.3}, cov {:.3}, max/min {}; latency p50 {} us, p99 {} us, p999 {} us",
        summary.jain,
        summary.cov,
        ratio(summary.max_min_ratio),
        summary.p50_us,
        summary.p99_us,
        summary.p999_us
    );
    let _ = writeln!(s, "errors: {}", errors(summary));
    s
}

/// max/min as text: "inf" when a worker got nothing.
pub fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "inf".into()
    }
}

fn errors(s: &SummaryRow) -> String {
    let parts: Vec<String> = [
        ("refused", s.err_refused),
        ("reset", s.err_reset),
        ("timeout", s.err_timeout),
        ("addr_not_available", s.err_addr_not_available),
        ("malformed", s.err_malformed),
        ("other", s.err_other),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| format!("{k} {n}"))
    .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
