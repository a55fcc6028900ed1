//! The `loadgen` command: parses flags into a [`loadgen::Config`], runs it,
//! and prints per-worker counts, latency percentiles by phase and fairness
//! figures.
//!
//! Exit status: 0 all connections completed, 1 some failed (or the run could
//! not be carried out), 2 bad input. Open-loop arrivals that were dropped
//! (never started) are printed but do not change the status: they are a
//! measurement of overload, not a failure of the run.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use loadgen::config::DEFAULT_MAX_INFLIGHT;
use loadgen::{parse_duration, parse_sources, Arrivals, Attribution, Config, OpenLoop, Report, Stop};
use records::fairness;

const AFTER_HELP: &str = "\
Examples:
  loadgen --target 127.0.0.1:8080 --concurrency 64 --connections 100000
  loadgen --target 127.0.0.1:8080 --concurrency 1 --gap 200us --connections 3000
  loadgen --target 127.0.0.1:8080 -c 8 -t 2 --duration 60s --source 127.0.0.2 --source 127.0.0.3
  loadgen --target [::1]:8080 -c 8 --duration 10s
  loadgen --target 127.0.0.1:8080 --rate 5000 --arrivals poisson --duration 30s
  loadgen --target 127.0.0.1:8080 -c 16 --requests-per-conn 100 --sources 127.0.0.1-127.0.0.32
  loadgen --target 127.0.0.1:8080 -c 8 --attribute header:x-served-by
  loadgen --target 127.0.0.1:8080 -c 8 --attribute body

Closed loop (--concurrency): C connections in flight, each slot starting its
next connection when the previous one ends. Open loop (--rate): R new
connections per second on a fixed schedule whatever the server does; latency
`total` counts from the intended start (corrected for coordinated omission),
`total_uncorrected` from the actual start. An arrival that finds
--max-inflight connections open waits (late); one that waits longer than
--timeout, or is still waiting at the end, is dropped.

Every response must name the worker that served it: by default in an
`x-worker: <id>` header; with --attribute header:NAME in the header NAME
(case-insensitive); with --attribute body in the first line of the body
(trimmed, at most 64 bytes). Responses that name no worker are counted under
worker `?`.
Only loopback targets (127.0.0.0/8, ::1) are accepted unless --allow-remote
is given. --source/--sources must be loopback in any case, so they cannot be
combined with a remote target.";

/// HTTP/1.1 load generator, closed or open loop, that counts which worker
/// served each response.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version, after_help = AFTER_HELP)]
struct Cli {
    /// Address to load: 127.0.0.0/8 or [::1] only, unless --allow-remote
    #[arg(long, value_name = "ADDR")]
    target: SocketAddr,
    /// Accept a target that is not on loopback (sources must still be loopback)
    #[arg(long)]
    allow_remote: bool,
    /// Where responses name their worker: header:NAME or body [default: header:x-worker]
    #[arg(long, value_name = "header:NAME|body")]
    attribute: Option<String>,
    /// Closed loop: connections in flight in total
    #[arg(
        long,
        short = 'c',
        value_name = "C",
        required_unless_present = "rate",
        conflicts_with = "rate"
    )]
    concurrency: Option<usize>,
    /// Open loop: new connections per second, over all threads
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Open loop: arrival spacing, constant (every 1/R) or poisson [default: constant]
    #[arg(long, value_name = "MODEL")]
    arrivals: Option<Arrivals>,
    /// Seed of the Poisson arrival streams (same seed, same schedule)
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Open loop: most connections open at once, over all threads [default:
    /// 1000, enough for 1000 conn/s at 1 s latency and below the usual
    /// 1024 open-file limit]
    #[arg(long, value_name = "N")]
    max_inflight: Option<usize>,
    /// Requests per connection; all but the last say `Connection: keep-alive`
    #[arg(long, value_name = "K", default_value_t = 1)]
    requests_per_conn: u32,
    /// Count and attribute responses but record no latency (for benchmarks)
    #[arg(long)]
    no_record: bool,
    /// Send the handshake's last ACK with the request (TCP_DEFER_ACCEPT on
    /// the client socket): the server accepts a connection whose request is
    /// already there. Not what ordinary clients do; off by default
    #[arg(long)]
    piggyback_ack: bool,
    /// Connections (open loop: arrivals) in total [default: 10000 unless --duration]
    #[arg(long, short = 'n', value_name = "N", conflicts_with = "duration")]
    connections: Option<u64>,
    /// Start connections for this long, then drain (e.g. 10s, 500ms, 2m)
    #[arg(long, short = 'd', value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Event-loop threads, at most C (or --max-inflight) [default: min(4 x CPUs, C)]
    #[arg(long, short = 't', value_name = "T")]
    threads: Option<usize>,
    /// Per-request limit (connect or send start to response complete); open
    /// loop: also the longest an arrival waits for a free slot
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// Think time between one connection's end and the slot's next start
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "0s")]
    gap: Duration,
    /// Bind each connection to these loopback source addresses in rotation (repeatable)
    #[arg(long = "source", value_name = "IP")]
    source: Vec<IpAddr>,
    /// Source addresses as a list: IPs and IPv4 ranges, e.g. 127.0.0.1-127.0.0.32,127.0.1.1
    #[arg(long, value_name = "LIST")]
    sources: Option<String>,
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
    if cli.rate.is_none() {
        // Checked here: clap's `requires` let these through in testing.
        if let Some(a) = cli.arrivals {
            return Err(UsageError(format!("--arrivals {a} needs --rate (the open loop)")).into());
        }
        if let Some(n) = cli.max_inflight {
            return Err(UsageError(format!("--max-inflight {n} needs --rate (the open loop)")).into());
        }
    }
    let mut cfg = match (cli.rate, cli.concurrency) {
        (Some(rate), _) => Config::new_open(
            cli.target,
            OpenLoop {
                rate,
                arrivals: cli.arrivals.unwrap_or(Arrivals::Constant),
                max_inflight: cli.max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT),
            },
            stop,
        ),
        (None, c) => Config::new(cli.target, c.unwrap_or(0), stop),
    };
    if let Some(t) = cli.threads {
        cfg.threads = t;
    }
    cfg.timeout = cli.timeout;
    cfg.gap = cli.gap;
    cfg.seed = cli.seed;
    cfg.requests_per_conn = cli.requests_per_conn;
    cfg.record = !cli.no_record;
    cfg.piggyback_ack = cli.piggyback_ack;
    cfg.sources = cli.source;
    if let Some(list) = &cli.sources {
        cfg.sources.extend(parse_sources(list).map_err(UsageError)?);
    }
    if let Some(h) = cli.host {
        cfg.host_header = h;
    }
    cfg.allow_remote = cli.allow_remote;
    if let Some(a) = &cli.attribute {
        // Parsed here rather than by clap, for a one-line error.
        cfg.attribution = Attribution::parse(a).map_err(UsageError)?;
    }
    cfg.validate().map_err(UsageError)?;
    let report = loadgen::run(&cfg).with_context(|| format!("load run against {} failed", cfg.target))?;
    print!("{}", render(&report, &cfg));
    Ok(if report.errors.total() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The per-worker table, the phases and the totals.
fn render(r: &Report, cfg: &Config) -> String {
    let keep_alive = cfg.requests_per_conn > 1;
    let mut out = String::new();
    let idw = r.per_worker.iter().map(|w| w.id.len()).chain([3]).max().unwrap_or(3);
    let requests_col = if keep_alive {
        format!("  {:>10}", "requests")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{:idw$}  {:>10}  {:>7}{requests_col}  {:>8}  {:>8}  {:>8}  {:>8}  (total latency, us)",
        "worker",
        "completed",
        "share",
        "p50",
        "p99",
        "p999",
        "max",
        idw = idw + 7
    );
    let row = |out: &mut String, label: &str, n: u64, req: u64, h: &hdrhistogram::Histogram<u64>| {
        let share = if r.completed > 0 {
            100.0 * n as f64 / r.completed as f64
        } else {
            0.0
        };
        let requests = if keep_alive {
            format!("  {req:>10}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{label:idw$}  {n:>10}  {share:>6.2}%{requests}  {}  {}  {}  {}",
            quantile(h, 0.5),
            quantile(h, 0.99),
            quantile(h, 0.999),
            quantile(h, 1.0),
            idw = idw + 7
        );
    };
    for w in &r.per_worker {
        row(
            &mut out,
            &format!("worker {}", w.id),
            w.completed,
            w.requests,
            &w.latency,
        );
    }
    row(&mut out, "all", r.completed, r.requests, &r.latency);
    if cfg.record {
        let _ = writeln!(
            out,
            "{:18}  {:>8}  {:>8}  {:>8}  {:>8}  (us)",
            "phase", "p50", "p99", "p999", "max"
        );
        for (name, h) in r.phases.iter() {
            let _ = writeln!(
                out,
                "{name:18}  {}  {}  {}  {}",
                quantile(h, 0.5),
                quantile(h, 0.99),
                quantile(h, 0.999),
                quantile(h, 1.0)
            );
        }
    } else {
        let _ = writeln!(out, "latency: not recorded (--no-record)");
    }
    let _ = writeln!(out, "completed: {} of {} started", r.completed, r.started);
    if let Some(o) = cfg.open {
        let _ = writeln!(
            out,
            "arrivals: {} at {}/s (seed {}): {} scheduled, {} started ({:.1}/s), {} late, {} dropped",
            o.arrivals,
            o.rate,
            cfg.seed,
            r.scheduled,
            r.started,
            if r.elapsed.is_zero() {
                0.0
            } else {
                r.started as f64 / r.elapsed.as_secs_f64()
            },
            r.late,
            r.dropped
        );
    }
    if keep_alive {
        let _ = writeln!(
            out,
            "requests: {} over {} connections ({} per connection), {:.0} req/s",
            r.requests,
            r.started,
            cfg.requests_per_conn,
            r.req_per_s()
        );
    }
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
        "fairness over {} workers: jain {}, max/min {}",
        counts.len(),
        fairness::show(fairness::jain(&counts), 4),
        fairness::show(fairness::max_min_ratio(&counts), 2)
    );
    if fairness::jain(&counts).is_none() {
        let _ = writeln!(out, "fairness: {}", fairness::UNDEFINED);
    }
    out
}

/// A quantile right-aligned in 8 columns, or `-` if nothing was recorded.
fn quantile(h: &hdrhistogram::Histogram<u64>, q: f64) -> String {
    if h.is_empty() {
        format!("{:>8}", "-")
    } else {
        format!("{:>8}", h.value_at_quantile(q))
    }
}
