//! The command line: `harness run`, `harness sweep`, `harness reproduce`,
//! `harness external`, `harness plot`, `harness report`, `harness models`,
//! `harness doctor`.
//!
//! Parsing errors and other usage errors print one line naming the bad value
//! and exit with code 2 before anything starts; a run that fails exits 1; a
//! run whose conservation check fails writes its files and exits 1.

// The doc comments of the argument structs are clap's help text, shown as
// written (`results/<timestamp>-<model>`), not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use fleet::model::Model;
use lab::output::{out_dir, write_run};
use lab::params::{self, Naming};
use lab::scenario::Scenario;
use lab::servers::Server;
use lab::{experiment, interrupt, run, sweep, UsageError};

use crate::run_args::RunArgs;

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
    Run(RunArgs),
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
    /// Say what this machine lets the harness do, one line per capability, and what each missing one disables.
    ///
    /// Root, network namespaces, sock_diag, tracefs, perf events, bpf(2) program types, classic BPF, io_uring, the
    /// tcp_migrate_req sysctl, and the real servers with their versions. Each is tried on something thrown away;
    /// nothing on the machine is changed. Exits 0 whatever is missing.
    #[command(after_help = "Examples:\n  harness doctor\n  harness doctor --json")]
    Doctor {
        /// Print the capabilities as a JSON array instead.
        #[arg(long)]
        json: bool,
    },
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

fn parse_connections(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("0 connections: it must be at least 1".into()),
        Ok(n) => Ok(n),
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
        Cmd::Doctor { json } => {
            // A report: exit 0 whatever is missing (a signal still makes
            // main exit 128 + it, after printing what was examined).
            let caps = lab::doctor::examine();
            if json {
                println!("{}", lab::doctor::json(&caps)?);
            } else {
                print!("{}", lab::doctor::text(&caps));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => cmd_run(a),
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
    if let (true, Some(sig)) = (drawn.interrupted(), interrupt::interrupted()) {
        let what = format!(
            "the charts and report were not all drawn; draw them with: harness report {}",
            dir.display()
        );
        return Err(interrupt::Interrupted::new(sig, what).into());
    }
    // Whole (a signal seen after the last chart still makes main exit 128 + it).
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
    let spec = params::build(&a.given, Naming::Flags).map_err(|r| UsageError(r.message))?;
    lab::preflight::check(&spec)?;
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
    write_run(&dir, &result, &lab::output::run_meta(started, &spec, &result))?;
    print!(
        "{}",
        records::text::run(&result.summary, &result.workers, &result.params)
    );
    if let Some(w) = &result.kernel_warning {
        println!("{w}");
    }
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
