//! The readable table a run prints to stdout, from its rows.

use std::fmt::Write;

use crate::rows::{SummaryRow, WorkerRow};

/// The run's table; `params` are its parameter columns (as in summary.csv).
pub fn run(summary: &SummaryRow, workers: &[WorkerRow], params: &[(&str, String)]) -> String {
    let mut s = String::new();
    let param = |k: &str| {
        params
            .iter()
            .find(|(c, _)| *c == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let load = match (param("concurrency"), param("rate")) {
        (Some(c), _) => format!("concurrency {c}"),
        (None, Some(r)) => format!(
            "open loop at {r} conn/s ({} arrivals, at most {} open)",
            param("arrivals").unwrap_or("?"),
            param("max_inflight").unwrap_or("?")
        ),
        (None, None) => "unknown load".into(),
    };
    let _ = writeln!(
        s,
        "{}: {} workers, {load}, {} connections in {:.2} s = {:.0} conn/s",
        summary.model, summary.workers, summary.completed, summary.duration_s, summary.conn_per_s
    );
    let keep_alive = summary.requests != summary.completed;
    if keep_alive {
        let _ = writeln!(
            s,
            "keep-alive: {} requests ({} per connection) = {:.0} req/s",
            summary.requests,
            param("requests_per_conn").unwrap_or("?"),
            summary.req_per_s
        );
    }
    let mut header = vec![
        "worker", "pid", "accepted", "share", "requests", "wakeups", "spurious", "cpu_ms", "p50_us", "p99_us",
        "p999_us", "max_us",
    ];
    let mut widths = vec![6, 8, 9, 7, 9, 8, 9, 8, 7, 7, 8, 8];
    // `--attribute kernel`: who the kernel saw accept, beside the count.
    let kernel = workers.iter().any(|w| w.kernel_accepted.is_some());
    if kernel {
        header.insert(3, "kernel");
        widths.insert(3, 9);
    }
    for (h, w) in header.iter().zip(widths.iter().copied()) {
        let _ = write!(s, "{h:>w$} ");
    }
    s.pop();
    s.push('\n');
    for w in workers {
        let mut cells = vec![
            w.worker.to_string(),
            w.pid.to_string(),
            w.accepted.to_string(),
            format!("{:.1}%", w.share * 100.0),
            w.requests.to_string(),
            w.wakeups.to_string(),
            w.spurious_wakeups.to_string(),
            format!("{:.0}", w.cpu_ms),
            w.p50_us.to_string(),
            w.p99_us.to_string(),
            w.p999_us.to_string(),
            w.max_us.to_string(),
        ];
        if kernel {
            cells.insert(3, w.kernel_accepted.map_or("-".into(), |k| k.to_string()));
        }
        for (c, w) in cells.iter().zip(widths.iter().copied()) {
            let _ = write!(s, "{c:>w$} ");
        }
        s.pop();
        s.push('\n');
    }
    let show = crate::fairness::show;
    let _ = writeln!(
        s,
        "connections: Jain {}, cov {}, max/min {}, gini {}, top-1 share {}, idle workers {}",
        show(summary.jain, 3),
        show(summary.cov, 3),
        ratio(summary.max_min_ratio),
        show(summary.gini, 3),
        show(summary.top1_share, 3),
        summary.idle_workers.map_or("n/a".into(), |n| n.to_string())
    );
    if let Some(total) = summary.kernel_accepted {
        let workers_took: u64 = workers.iter().filter_map(|w| w.kernel_accepted).sum();
        let others = total.saturating_sub(workers_took);
        let _ = writeln!(
            s,
            "who accepted (the kernel): {total} accepted{}, Jain {}, max/min {}",
            match others {
                0 => String::new(),
                n => format!(", {n} by processes that are no worker (a dispatcher, a master)"),
            },
            show(summary.kernel_jain, 3),
            ratio(summary.kernel_max_min_ratio)
        );
    }
    if keep_alive {
        let _ = writeln!(
            s,
            "requests:    Jain {}, cov {}, max/min {}, gini {}",
            show(summary.req_jain, 3),
            show(summary.req_cov, 3),
            ratio(summary.req_max_min_ratio),
            show(summary.req_gini, 3)
        );
    }
    if summary.jain.is_none() {
        let _ = writeln!(s, "fairness n/a: {}", crate::fairness::UNDEFINED);
    }
    let _ = writeln!(
        s,
        "latency p50/p99/p999 us: connect {}/{}/{}, ttfb {}/{}/{}, total {}/{}/{}, uncorrected total {}/{}/{}",
        summary.connect_p50_us,
        summary.connect_p99_us,
        summary.connect_p999_us,
        summary.ttfb_p50_us,
        summary.ttfb_p99_us,
        summary.ttfb_p999_us,
        summary.total_p50_us,
        summary.total_p99_us,
        summary.total_p999_us,
        summary.uncorrected_p50_us,
        summary.uncorrected_p99_us,
        summary.uncorrected_p999_us
    );
    if let (Some(q50), Some(q99), Some(s50), Some(s99)) = (
        summary.queue_p50_us,
        summary.queue_p99_us,
        summary.service_p50_us,
        summary.service_p99_us,
    ) {
        let _ = writeln!(
            s,
            "waited to be taken (queue) p50/p99 us: {q50}/{q99}; taken to first response (service): {s50}/{s99}"
        );
    }
    if summary.late > 0 || summary.dropped > 0 {
        let _ = writeln!(
            s,
            "open loop: {} arrivals started late and {} were dropped because --max-inflight was full",
            summary.late, summary.dropped
        );
    }
    let _ = writeln!(s, "errors: {}", errors(summary));
    s
}

/// max/min as text: "inf" when a worker got nothing, "n/a" when undefined.
pub fn ratio(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.2}"),
        Some(_) => "inf".into(),
        None => "n/a".into(),
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
        ("cancelled", s.err_cancelled),
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
