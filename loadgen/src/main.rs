//! The `loadgen` command: parses flags into a [`loadgen::Config`], runs it,
//! and prints per-worker counts, latency percentiles and fairness figures.
//!
//! Exit status: 0 all connections completed, 1 some failed (or the run could
//! not be carried out), 2 bad input.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use loadgen::{fairness, parse_duration, Config, Report, Stop};

const AFTER_HELP: &str = "\
Examples:
  loadgen --target 127.0.0.1:8080 --concurrency 64 --connections 100000
  loadgen --target 127.0.0.1:8080 --concurrency 1 --gap 200us --connections 3000
  loadgen --target 127.0.0.1:8080 -c 8 -t 2 --duration 60s --source 127.0.0.2 --source 127.0.0.3
  loadgen --target [::1]:8080 -c 8 --duration 10s

Every response must carry an `x-worker: <id>` header naming the worker that
served it; responses without one are counted under worker `?`.
Only loopback targets (127.0.0.0/8, ::1) are accepted.";

/// Closed-loop HTTP/1.1 load generator, one connection per request, that
/// counts which worker served each response.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version, after_help = AFTER_HELP)]
struct Cli {
    /// Address to load: 127.0.0.0/8 or [::1] only
    #[arg(long, value_name = "ADDR")]
    target: SocketAddr,
    /// Connections in flight in total
    #[arg(long, short = 'c', value_name = "C")]
    concurrency: usize,
    /// Connections to attempt in total [default: 10000 unless --duration]
    #[arg(long, short = 'n', value_name = "N", conflicts_with = "duration")]
    connections: Option<u64>,
    /// Start connections for this long, then drain (e.g. 10s, 500ms, 2m)
    #[arg(long, short = 'd', value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Event-loop threads, at most --concurrency [default: min(CPUs, C)]
    #[arg(long, short = 't', value_name = "T")]
    threads: Option<usize>,
    /// Per-connection limit, connect to end of stream
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Think time between one connection's end and the slot's next start
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "0s")]
    gap: Duration,
    /// Bind each connection to these loopback source addresses in rotation (repeatable)
    #[arg(long = "source", value_name = "IP")]
    sources: Vec<IpAddr>,
    /// Host header value [default: the target address]
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
}

/// Bad input: reported on one line with exit status 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let stop = match (cli.connections, cli.duration) {
        (_, Some(d)) => Stop::Duration(d),
        (n, None) => Stop::Connections(n.unwrap_or(10_000)),
    };
    let mut cfg = Config::new(cli.target, cli.concurrency, stop);
    if let Some(t) = cli.threads {
        cfg.threads = t;
    }
    cfg.timeout = cli.timeout;
    cfg.gap = cli.gap;
    cfg.sources = cli.sources;
    if let Some(h) = cli.host {
        cfg.host_header = h;
    }
    cfg.validate().map_err(UsageError)?;
    let report =
        loadgen::run(&cfg).with_context(|| format!("load run against {} failed", cfg.target))?;
    print!("{}", render(&report));
    Ok(if report.errors.total() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The per-worker table and the totals.
fn render(r: &Report) -> String {
    let mut out = String::new();
    let idw = r
        .per_worker
        .iter()
        .map(|w| w.id.len())
        .chain([3])
        .max()
        .unwrap_or(3);
    let _ = writeln!(
        out,
        "{:idw$}  {:>10}  {:>7}  {:>8}  {:>8}  {:>8}  {:>8}  (latency, us)",
        "worker",
        "completed",
        "share",
        "p50",
        "p99",
        "p999",
        "max",
        idw = idw + 7
    );
    let row = |out: &mut String, label: &str, n: u64, h: &hdrhistogram::Histogram<u64>| {
        let share = if r.completed > 0 {
            100.0 * n as f64 / r.completed as f64
        } else {
            0.0
        };
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        let _ = writeln!(
            out,
            "{label:idw$}  {n:>10}  {share:>6.2}%  {:>8}  {:>8}  {:>8}  {:>8}",
            q(0.5),
            q(0.99),
            q(0.999),
            h.max(),
            idw = idw + 7
        );
    };
    for w in &r.per_worker {
        row(
            &mut out,
            &format!("worker {}", w.id),
            w.completed,
            &w.latency,
        );
    }
    row(&mut out, "all", r.completed, &r.latency);
    let _ = writeln!(out, "completed: {} of {} started", r.completed, r.started);
    let errors: Vec<String> = r
        .errors
        .iter()
        .filter(|&(_, n)| n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if errors.is_empty() {
        let _ = writeln!(out, "errors: none");
    } else {
        let _ = writeln!(out, "errors: {} ({})", r.errors.total(), errors.join(", "));
    }
    let _ = writeln!(out, "duration: {:.3} s", r.elapsed.as_secs_f64());
    let _ = writeln!(out, "conn/s: {:.0}", r.conn_per_s());
    let counts = r.worker_counts();
    let _ = writeln!(
        out,
        "fairness over {} workers: jain {:.4}, max/min {:.2}",
        counts.len(),
        fairness::jain(&counts),
        fairness::max_min_ratio(&counts)
    );
    out
}
