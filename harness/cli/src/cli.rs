//! The command line: `harness run`, `harness reproduce`, `harness models`.
//!
//! Parsing errors and other usage errors print one line naming the bad value
//! and exit with code 2 before anything starts; a run that fails exits 1; a
//! run whose conservation check fails writes its files and exits 1.

// The doc comments of the argument structs are clap's help text, shown as
// written (`results/<timestamp>-<model>`), not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use fleet::faults::{Faults, Kill};
use fleet::model::{Model, ModelOpts, Steer};
use fleet::supervise::FleetKind;
use fleet::worker::{Service, Stall};
use lab::output::{out_dir, write_run};
use lab::scenario::Scenario;
use lab::servers::Server;
use lab::spec::{Load, RunSpec};
use lab::subject::{Subject, Target};
use lab::{experiment, interrupt, run, sweep, UsageError};
use loadgen::{Arrivals, Attribution, OpenLoop, Stop};

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "Fork worker fleets under different accept models and measure how Linux spreads connections over them",
    after_help = "Examples:\n  harness reproduce\n  harness run --model shared-epoll --workers 4 --concurrency 32 --connections 20000\n  harness models"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one fleet under one accept model and measure the spread.
    #[command(
        after_help = "Example:\n  harness run --model reuseport --workers 4 --concurrency 64 --duration 5s --out results/rp"
    )]
    Run(Box<RunArgs>),
    /// Rerun the seed article's experiment (4 workers, shared-epoll) and the same load under every model.
    #[command(after_help = "Example:\n  harness reproduce --out results/seed")]
    Reproduce(ReproduceArgs),
    /// Measure real servers (Node.js, nginx) with the same load, beside the matching models, and check their own counts.
    #[command(
        after_help = "Examples:\n  harness external all\n  harness external node-seed node-rr --connections 10000\n  harness external nginx-mutex --no-counterparts"
    )]
    External(ExternalArgs),
    /// Run a scenario file's grid of runs and write one tidy data set.
    #[command(
        after_help = "Examples:\n  harness sweep scenarios/models.toml\n  harness sweep scenarios/load-sweep.toml --dry-run\n  harness sweep --resume results/20261126-120000-models"
    )]
    Sweep(SweepArgs),
    /// Draw every chart that the files in DIR (a run or a sweep) support.
    #[command(after_help = "Example:\n  harness plot results/20261126-120000-reproduce")]
    Plot { dir: PathBuf },
    /// Write REPORT.md and a self-contained report.html for DIR, with its charts.
    #[command(after_help = "Example:\n  harness report results/20261126-120000-load-sweep")]
    Report { dir: PathBuf },
    /// List the accept models, one line each.
    #[command(after_help = "Example:\n  harness models")]
    Models,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Accept model, or a real server the harness starts (see `harness models`).
    #[arg(long, value_parser = parse_subject, required_unless_present = "target", conflicts_with = "target")]
    model: Option<Subject>,
    /// Measure a server the harness did not start, at HOST:PORT (loopback
    /// only unless --allow-remote), instead of --model.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_target)]
    target: Option<SocketAddr>,
    /// With --target: how a response names its worker, header:NAME or body
    /// (the body's first line).
    /// [default: header:x-worker]
    #[arg(long, value_parser = parse_attribute)]
    attribute: Option<Attribution>,
    /// With --target: allow a target that is not on loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Worker processes, 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = parse_workers)]
    workers: usize,
    /// Connections in flight (closed loop) [default: 32 unless --rate].
    #[arg(long, value_parser = parse_positive, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// New connections per second (open loop), instead of --concurrency.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Open loop: arrival process, constant or poisson.
    #[arg(long, default_value = "poisson", value_parser = parse_arrivals, requires = "rate")]
    arrivals: Arrivals,
    /// Seed of the arrival process, so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Open loop: cap on open connections; arrivals beyond it start late.
    #[arg(long, value_parser = parse_positive, requires = "rate")]
    max_inflight: Option<usize>,
    /// Stop after this many connections [default: 20000 unless --duration].
    #[arg(long, value_parser = parse_connections, conflicts_with = "duration")]
    connections: Option<u64>,
    /// Stop after this long (e.g. 10s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Requests per connection (keep-alive); 1 = a connection per request.
    #[arg(long, default_value_t = 1, value_parser = parse_requests)]
    requests_per_conn: u32,
    /// Run the same load this long first and leave it out of every figure.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    warmup: Duration,
    /// Sampling interval of timeseries.csv and latency.hlog.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    interval: Duration,
    /// Load generator threads, each with its own epoll loop [default: 4 per
    /// CPU, at most the connections that may be open]. On loopback the kernel
    /// does both ends' TCP work in the thread that connects, and the server's
    /// workers preempt it; more threads than CPUs keep the rest going.
    #[arg(long, value_parser = parse_positive)]
    threads: Option<usize>,
    /// Source addresses to rotate over, e.g. 127.0.0.1-127.0.0.32 [default:
    /// the kernel's choice, 127.0.0.1].
    #[arg(long, value_parser = parse_sources)]
    sources: Option<Sources>,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Think time between one client's connections (e.g. 200us).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    gap: Duration,
    /// Per-connection timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Make worker IDX stop serving at AT for FOR (e.g. 0:1s:300ms).
    #[arg(long, value_parser = parse_stall)]
    stall_worker: Option<(usize, Stall)>,
    /// Record no latency (for measuring what recording costs).
    #[arg(long)]
    no_record: bool,
    /// listen(2) backlog of every listening socket.
    #[arg(long, default_value_t = fleet::model::BACKLOG, value_parser = parse_backlog)]
    backlog: i32,
    /// reuseport-cbpf: how the BPF program picks a socket (cpu or random).
    #[arg(long, default_value = "cpu", value_parser = parse_steer)]
    steer: Steer,
    /// Time each request takes in a worker: 0, spin:50us (busy CPU),
    /// sleep:1ms, or exp:200us (sleeps, exponentially distributed, that mean).
    #[arg(long, default_value = "0", value_parser = parse_service)]
    service: Service,
    /// Make worker IDX's service time FACTOR times longer (e.g. 0:10).
    #[arg(long, value_parser = parse_slow)]
    slow_worker: Option<(usize, f64)>,
    /// Pin worker i to CPU i modulo the CPU count.
    #[arg(long)]
    pin_workers: bool,
    /// Workers as forked processes, or as threads of one forked process.
    #[arg(long, default_value = "processes", value_parser = parse_fleet)]
    fleet: FleetKind,
    /// Thread fleets of shared-epoll or epoll-exclusive: every thread waits
    /// on one epoll set (a threaded server's single epoll instance).
    #[arg(long)]
    shared_epoll_set: bool,
    /// Pin the load generator's threads to these CPUs (e.g. 0 or 0,1).
    #[arg(long, value_parser = parse_cpus)]
    pin_loadgen: Option<Cpus>,
    /// Connections a worker may have open at once, 1 to 4096: above 1 each
    /// worker serves them from an event loop (epoll models and dispatchers only).
    #[arg(long, default_value_t = 1, value_parser = parse_worker_concurrency)]
    worker_concurrency: usize,
    /// SIGKILL worker IDX at T after the measured load began (e.g. 1@2s);
    /// repeatable.
    #[arg(long, value_name = "IDX@T")]
    kill_worker: Vec<Kill>,
    /// Start a replacement for each killed worker at once, as pm2 and
    /// Node's cluster do.
    #[arg(long)]
    respawn: bool,
    /// From AT on, replace every worker one after another (pm2 reload): the
    /// replacement starts, then the old worker closes its listening socket
    /// and exits.
    #[arg(long, value_name = "AT", value_parser = parse_duration)]
    rolling_restart: Option<Duration>,
    /// Set net.ipv4.tcp_migrate_req for the run (on: a closed reuseport
    /// socket's queued connections move to the group's other sockets; off:
    /// they are reset), restored afterwards. Needs root.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    tcp_migrate_req: Option<bool>,
    /// Where the workers listen: a loopback address, or 0.0.0.0 / :: for
    /// every interface (the load still goes to loopback) [default: 127.0.0.1].
    #[arg(long, value_name = "IP")]
    bind: Option<IpAddr>,
    /// Output directory [default: results/<timestamp>-<model>].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// Scenario file (TOML); with --resume, defaults to the sweep's own copy.
    #[arg(required_unless_present = "resume")]
    file: Option<PathBuf>,
    /// Output directory [default: results/<timestamp>-<scenario name>].
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Print the expanded grid and an estimate of its time; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Finish the sweep in DIR: skip the runs already complete there.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Seed of the shuffled run order [default: the scenario's, else drawn and recorded].
    #[arg(long)]
    seed: Option<u64>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Do not draw the charts and the report at the end.
    #[arg(long)]
    no_plots: bool,
}

#[derive(Args, Debug)]
struct ExternalArgs {
    /// node-seed, node-none, node-rr, nginx-exclusive, nginx-mutex,
    /// nginx-reuseport, or all.
    #[arg(required = true, value_name = "SERVER")]
    servers: Vec<String>,
    /// Do not run the matching harness model after each server.
    #[arg(long)]
    no_counterparts: bool,
    /// Output directory [default: results/<timestamp>-external].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    load: SeedLoad,
}

#[derive(Args, Debug)]
struct ReproduceArgs {
    /// Output directory [default: results/<timestamp>-reproduce].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    load: SeedLoad,
}

/// The seed's load, as `reproduce` and `external` run it.
#[derive(Args, Debug)]
struct SeedLoad {
    /// Connections per run.
    #[arg(long, default_value_t = records::seed::CONNECTIONS, value_parser = parse_connections)]
    connections: u64,
    /// Connections in flight: the load at which the seed's unevenness shows.
    #[arg(long, default_value_t = records::seed::CONCURRENCY, value_parser = parse_positive)]
    concurrency: usize,
    /// Do not draw the charts and the report at the end.
    #[arg(long)]
    no_plots: bool,
}

fn parse_subject(s: &str) -> Result<Subject, String> {
    s.parse()
}

fn parse_target(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    // A name such as localhost:8080: its first address.
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("'{s}' is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"))
}

fn parse_attribute(s: &str) -> Result<Attribution, String> {
    Attribution::parse(s)
}

fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} workers is out of range: 1 to 1024")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 is not allowed: it must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

fn parse_connections(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("0 connections: it must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    loadgen::parse_duration(s)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) => loadgen::config::rate_problem(r).map_or(Ok(r), Err),
        _ => Err(format!("'{s}' is not a positive number of connections per second")),
    }
}

fn parse_arrivals(s: &str) -> Result<Arrivals, String> {
    s.parse()
}

fn parse_requests(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("0 requests per connection: it must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// A list of source addresses, parsed as one value.
#[derive(Debug, Clone)]
struct Sources(Vec<IpAddr>);

fn parse_sources(s: &str) -> Result<Sources, String> {
    loadgen::config::parse_sources(s).map(Sources)
}

fn parse_backlog(s: &str) -> Result<i32, String> {
    match s.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a backlog of at least 1")),
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("'{s}' is not on or off")),
    }
}

fn parse_worker_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=lab::spec::MAX_WORKER_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a worker concurrency from 1 to {}",
            lab::spec::MAX_WORKER_CONCURRENCY
        )),
    }
}

fn parse_fleet(s: &str) -> Result<FleetKind, String> {
    s.parse()
}

fn parse_steer(s: &str) -> Result<Steer, String> {
    s.parse()
}

fn parse_service(s: &str) -> Result<Service, String> {
    s.parse()
}

use lab::params::{parse_slow, parse_stall};

/// A list of CPUs, parsed as one value.
#[derive(Debug, Clone)]
struct Cpus(Vec<usize>);

fn parse_cpus(s: &str) -> Result<Cpus, String> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    s.split(',')
        .map(|c| match c.trim().parse::<usize>() {
            Ok(c) if c < n => Ok(c),
            _ => Err(format!("'{c}' in '{s}' is not a CPU of this machine (0 to {})", n - 1)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Cpus)
}

/// Parses, runs, and maps every outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(2);
            }
            eprintln!("harness: {}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    // SIGINT/SIGTERM caught (interrupt.rs): exit 128 + the signal, as a
    // shell reports a command a signal ended, whatever was kept.
    let signal = interrupt::interrupted;
    match dispatch(cli.cmd) {
        Ok(code) => match signal() {
            Some(sig) => ExitCode::from(interrupt::exit_code(sig)),
            None => code,
        },
        Err(e) => {
            if let Some(i) = e.downcast_ref::<interrupt::Interrupted>() {
                eprintln!("harness: {i}");
                ExitCode::from(i.exit_code())
            } else if let (None, Some(sig)) = (e.downcast_ref::<UsageError>(), signal()) {
                eprintln!("harness: interrupted by {}: {e:#}", interrupt::name(sig));
                ExitCode::from(interrupt::exit_code(sig))
            } else if let Some(u) = e.downcast_ref::<UsageError>() {
                eprintln!("harness: {u}");
                ExitCode::from(2)
            } else {
                eprintln!("harness: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// Clap's message up to its usage block, folded into one line: the first
/// line names the argument and the value, and a missing argument is named on
/// the lines after it.
fn one_line(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

fn dispatch(cmd: Cmd) -> anyhow::Result<ExitCode> {
    // Every command that does more than print catches SIGINT/SIGTERM
    // (interrupt.rs), so that it stops at a point where its files are whole.
    if !matches!(cmd, Cmd::Models) {
        interrupt::install().context("catching SIGINT and SIGTERM")?;
    }
    match cmd {
        Cmd::Models => {
            for m in Model::ALL {
                println!("{:<16} {}", m.name(), m.describe());
            }
            println!("\nReal servers (harness run --model NAME, harness external NAME):");
            for s in Server::ALL {
                println!("{:<16} {}", s.name(), s.describe());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => cmd_run(*a),
        Cmd::Sweep(a) => cmd_sweep(a),
        Cmd::Plot { dir } => {
            let drawn = report::draw_all_until(&existing_dir(&dir)?, &signalled)?;
            print_drawn(&drawn);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report { dir } => {
            draw_report(&existing_dir(&dir)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Reproduce(a) => {
            let done = experiment::reproduce::run(a.out, a.load.connections, a.load.concurrency)?;
            finish_experiment(done, !a.load.no_plots)
        }
        Cmd::External(a) => {
            let done = experiment::external::run(experiment::external::Options {
                servers: experiment::external::parse_servers(&a.servers)?,
                counterparts: !a.no_counterparts,
                out: a.out,
                connections: a.load.connections,
                concurrency: a.load.concurrency,
            })?;
            finish_experiment(done, !a.load.no_plots)
        }
    }
}

/// Prints what an experiment did, draws its report unless told not to,
/// and says how it went.
fn finish_experiment(done: experiment::reproduce::Done, plots: bool) -> anyhow::Result<ExitCode> {
    print!("{}", done.text);
    if plots {
        draw_report(&done.outcome.dir)?;
    }
    Ok(if done.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Whether a SIGINT or SIGTERM came: what the drawing of charts asks
/// before each chart.
pub fn signalled() -> bool {
    interrupt::interrupted().is_some()
}

/// A directory given on the command line that must exist.
fn existing_dir(dir: &Path) -> Result<PathBuf, UsageError> {
    if dir.is_dir() {
        Ok(dir.to_path_buf())
    } else {
        Err(UsageError(format!("{} is not a directory of results", dir.display())))
    }
}

/// Draws the charts and writes the report of `dir`, saying what it drew;
/// a signal stops it between charts, leaving the earlier report whole.
pub fn draw_report(dir: &Path) -> anyhow::Result<()> {
    let drawn = report::write_until(dir, &signalled)?;
    print_drawn(&drawn);
    if let Some(sig) = interrupt::interrupted() {
        let what = format!(
            "the charts and report were not all drawn; draw them with: harness report {}",
            dir.display()
        );
        return Err(interrupt::Interrupted::new(sig, what).into());
    }
    println!(
        "report: {} and {}",
        dir.join("REPORT.md").display(),
        dir.join("report.html").display()
    );
    Ok(())
}

/// Says which charts were drawn, and why the others were not.
pub fn print_drawn(drawn: &report::Drawn) {
    for c in &drawn.charts {
        println!("drew {} ({})", c.svg.display(), c.title);
    }
    for (name, why) in &drawn.skipped {
        println!("skipped {name}: {why}");
    }
}

fn cmd_run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let load = match a.rate {
        Some(rate) => Load::Open(OpenLoop {
            rate,
            arrivals: a.arrivals,
            max_inflight: a.max_inflight.unwrap_or(loadgen::config::DEFAULT_MAX_INFLIGHT),
        }),
        None => Load::Closed {
            concurrency: a.concurrency.unwrap_or(32),
        },
    };
    if a.target.is_none() {
        for (flag, given) in [
            ("--attribute", a.attribute.is_some()),
            ("--allow-remote", a.allow_remote),
        ] {
            if given {
                return Err(UsageError(format!("{flag} applies to --target only")).into());
            }
        }
    }
    let subject = match (a.model, a.target) {
        (Some(m), _) => m,
        (None, Some(addr)) => Subject::Target(Target {
            addr,
            attribution: a.attribute.unwrap_or_default(),
            allow_remote: a.allow_remote,
        }),
        (None, None) => unreachable!("clap requires --model or --target"),
    };
    let spec = RunSpec {
        subject,
        workers: a.workers,
        load,
        stop: match a.duration {
            Some(d) => Stop::Duration(d),
            None => Stop::Connections(a.connections.unwrap_or(20_000)),
        },
        threads: a
            .threads
            .unwrap_or_else(|| loadgen::config::default_threads(load.max_open())),
        port: a.port,
        gap: a.gap,
        timeout: a.timeout,
        requests_per_conn: a.requests_per_conn,
        warmup: a.warmup,
        interval: a.interval,
        seed: a.seed,
        sources: a.sources.map(|s| s.0).unwrap_or_default(),
        stall: a.stall_worker,
        record: !a.no_record,
        model_opts: ModelOpts {
            backlog: a.backlog,
            steer: a.steer,
        },
        service: a.service,
        slow: a.slow_worker,
        pin_workers: a.pin_workers,
        fleet: a.fleet,
        shared_epoll_set: a.shared_epoll_set,
        pin_loadgen: a.pin_loadgen.map(|c| c.0).unwrap_or_default(),
        worker_concurrency: a.worker_concurrency,
        faults: Faults {
            kills: a.kill_worker,
            respawn: a.respawn,
            rolling_restart: a.rolling_restart,
        },
        tcp_migrate_req: a.tcp_migrate_req,
        bind: a.bind.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    };
    spec.validate()?;
    let (started, stamp) = records::meta::utc_now();
    let dir = out_dir(a.out, &stamp, spec.subject.name());
    let created = records::check_writable(&dir).map_err(UsageError)?;
    let result = match run::execute(&spec, &dir) {
        Ok(r) => r,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
    };
    let mut meta = lab::machine::meta(started, spec.parameters());
    meta.loadgen_cpu_ms = Some(result.summary.loadgen_cpu_ms);
    write_run(&dir, &result, &meta)?;
    print!("{}", records::text::run(&result.summary, &result.workers));
    println!("{}", lab::conservation::line(&result));
    println!("files: {}", dir.display());
    if let Some(sig) = result.interrupted {
        // main exits with 128 + sig.
        eprintln!(
            "harness: interrupted by {}: the run was cut short; its files in {} say complete=false",
            interrupt::name(sig),
            dir.display()
        );
    }
    Ok(if result.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let file = match (&a.file, &a.resume) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => dir.join("scenario.toml"),
        (None, None) => unreachable!("clap requires FILE unless --resume"),
    };
    let scn = Scenario::load(&file)?;
    if a.dry_run {
        print!("{}", sweep::dry_run(&scn));
        return Ok(ExitCode::SUCCESS);
    }
    let (_, stamp) = records::meta::utc_now();
    let opts = sweep::Options {
        out: match &a.resume {
            Some(dir) => dir.clone(),
            None => out_dir(a.out, &stamp, &scn.name),
        },
        resume: a.resume.is_some(),
        seed: a.seed,
        quiet: a.quiet,
    };
    let outcome = sweep::run(&scn, &opts)?;
    let failed: Vec<String> = outcome
        .results
        .iter()
        .filter(|(_, r)| !r.ok())
        .map(|(p, r)| format!("{}: {}", p.id, lab::conservation::line(r)))
        .collect();
    println!(
        "{}: {} runs done{}; files: {}",
        scn.name,
        outcome.results.len(),
        if outcome.skipped > 0 {
            format!(", {} already complete", outcome.skipped)
        } else {
            String::new()
        },
        outcome.dir.display()
    );
    for f in &failed {
        println!("{f}");
    }
    if !a.no_plots {
        draw_report(&outcome.dir)?;
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
