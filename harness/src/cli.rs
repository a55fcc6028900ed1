//! The command line: `harness run`, `harness reproduce`, `harness models`.
//!
//! Parsing errors and other usage errors print one line naming the bad value
//! and exit with code 2 before anything starts; a run that fails exits 1; a
//! run whose conservation check fails writes its files and exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::export::{self, meta::Meta};
use crate::model::Model;
use crate::run::{self, RunSpec};
use crate::UsageError;
use loadgen::Stop;

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
    /// List the accept models, one line each.
    #[command(after_help = "Example:\n  harness models")]
    Models,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Accept model (see `harness models`).
    #[arg(long, value_parser = parse_model)]
    model: Model,
    /// Worker processes, 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = parse_workers)]
    workers: usize,
    /// Connections in flight (closed loop).
    #[arg(long, default_value_t = 32, value_parser = parse_positive)]
    concurrency: usize,
    /// Stop after this many connections [default: 20000 unless --duration].
    #[arg(long, value_parser = parse_connections, conflicts_with = "duration")]
    connections: Option<u64>,
    /// Stop after this long (e.g. 10s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Load generator threads, each with its own epoll loop [default: CPU
    /// count, at most the concurrency]. One thread tops out near 20k conn/s
    /// here: on loopback the kernel does both ends' TCP work in the thread
    /// that connects.
    #[arg(long, value_parser = parse_positive)]
    threads: Option<usize>,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Think time between one client's connections (e.g. 200us).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    gap: Duration,
    /// Per-connection timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Output directory [default: results/<timestamp>-<model>].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ReproduceArgs {
    /// Output directory [default: results/<timestamp>-reproduce].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Connections per model.
    #[arg(long, default_value_t = crate::reproduce::CONNECTIONS, value_parser = parse_connections)]
    connections: u64,
    /// Connections in flight: the load at which the seed's unevenness shows.
    #[arg(long, default_value_t = crate::reproduce::CONCURRENCY, value_parser = parse_positive)]
    concurrency: usize,
}

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
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
    match dispatch(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            if let Some(u) = e.downcast_ref::<UsageError>() {
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
    match cmd {
        Cmd::Models => {
            for m in Model::ALL {
                println!("{:<16} {}", m.name(), m.describe());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => cmd_run(a),
        Cmd::Reproduce(a) => crate::reproduce::main(a.out, a.connections, a.concurrency),
    }
}

/// The output directory: the user's, or `results/<stamp>-<label>`.
pub fn out_dir(out: Option<PathBuf>, stamp: &str, label: &str) -> PathBuf {
    out.unwrap_or_else(|| Path::new("results").join(format!("{stamp}-{label}")))
}

fn cmd_run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let spec = RunSpec {
        model: a.model,
        workers: a.workers,
        concurrency: a.concurrency,
        stop: match a.duration {
            Some(d) => Stop::Duration(d),
            None => Stop::Connections(a.connections.unwrap_or(20_000)),
        },
        threads: a
            .threads
            .unwrap_or_else(|| loadgen::config::default_threads(a.concurrency)),
        port: a.port,
        gap: a.gap,
        timeout: a.timeout,
    };
    spec.validate()?;
    let (started, stamp) = export::meta::utc_now();
    let dir = out_dir(a.out, &stamp, spec.model.name());
    let created = export::check_writable(&dir).map_err(UsageError)?;
    let result = match run::execute(&spec) {
        Ok(r) => r,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(e);
        }
    };
    let meta = Meta::collect(started, spec.parameters());
    write_run(&dir, &result, &meta)?;
    print!("{}", export::table::run(&result.summary, &result.workers));
    println!("{}", result.conservation_line());
    println!("files: {}", dir.display());
    Ok(if result.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes a run's three files into `dir`.
pub fn write_run(dir: &Path, result: &run::RunResult, meta: &Meta) -> anyhow::Result<()> {
    export::write_atomic(dir, "workers.csv", &export::csv::workers(&result.workers)?)?;
    export::write_atomic(
        dir,
        "summary.csv",
        &export::csv::summary(std::slice::from_ref(&result.summary))?,
    )?;
    export::write_atomic(dir, "meta.json", &meta.to_json()?).context("writing meta.json")?;
    Ok(())
}
