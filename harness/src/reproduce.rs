//! `harness reproduce`: the seed article's experiment, rerun.
//!
//! The seed shows four Node.js workers sharing one listening handle getting
//! 14561 / 8329 / 2356 / 4885 connections. Node (libuv) workers each poll the
//! shared socket with their own epoll set, which is the `shared-epoll` model.
//! This runs that model with four workers at a load where the unevenness
//! shows, prints it in the seed's own words beside the seed's fairness, then
//! runs the same load under every other model and prints them as one table.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use crate::cli::{out_dir, write_run};
use crate::export::{self, meta::Meta, table::ratio};
use crate::model::Model;
use crate::record::{SummaryRow, WorkerRow};
use crate::run::{self, RunResult, RunSpec};
use crate::stats;
use crate::UsageError;
use loadgen::Stop;

/// The seed's table: connections per worker.
pub const SEED: [u64; 4] = [14561, 8329, 2356, 4885];
/// About as many connections as the seed's run had (30131).
pub const CONNECTIONS: u64 = 30_000;
/// Connections in flight. See the README: at this load the workers are
/// rarely all waiting at once, so whoever is back in epoll_wait first wins.
pub const CONCURRENCY: usize = 2;
const WORKERS: usize = 4;

/// The models in the order they run: the seed's first.
const ORDER: [Model; 5] = [
    Model::SharedEpoll,
    Model::SharedBlocking,
    Model::EpollExclusive,
    Model::Reuseport,
    Model::DispatchRr,
];

pub fn main(
    out: Option<PathBuf>,
    connections: u64,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let spec_for = |model| RunSpec {
        threads: 1,
        ..RunSpec::closed(model, WORKERS, concurrency, Stop::Connections(connections))
    };
    spec_for(ORDER[0]).validate()?;
    let (started, stamp) = export::meta::utc_now();
    let dir = out_dir(out, &stamp, "reproduce");
    export::check_writable(&dir).map_err(UsageError)?;

    let mut results: Vec<RunResult> = Vec::new();
    for model in ORDER {
        let spec = spec_for(model);
        let (at, _) = export::meta::utc_now();
        let run_dir = dir.join(model.name());
        std::fs::create_dir_all(&run_dir)?;
        let result = run::execute(&spec, &run_dir)?;
        let mut meta = Meta::collect(at, spec.parameters());
        meta.loadgen_cpu_ms = Some(result.summary.loadgen_cpu_ms);
        write_run(&run_dir, &result, &meta)?;
        if model == Model::SharedEpoll {
            print!("{}", seed_form(&result));
        }
        results.push(result);
        write_combined(&dir, &results, &started, connections, concurrency)?;
    }
    println!();
    print!("{}", comparison(&results));
    let mut ok = true;
    for r in &results {
        println!("{}: {}", r.summary.model, r.conservation_line());
        ok &= r.ok();
    }
    println!("files: {}", dir.display());
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The seed's own form, then fairness beside the seed's.
fn seed_form(r: &RunResult) -> String {
    let mut s = String::new();
    for w in &r.workers {
        s.push_str(&format!(
            "worker {} got {} connections\n",
            w.pid, w.accepted
        ));
    }
    s.push_str(&format!(
        "Jain's fairness index {:.2} (seed: {:.2}), max/min {} (seed: {:.1}), at {:.0} conn/s with {} connections in flight\n",
        r.summary.jain,
        stats::jain(&SEED),
        ratio(r.summary.max_min_ratio),
        stats::max_min_ratio(&SEED),
        r.summary.conn_per_s,
        r.summary.concurrency.unwrap_or_default()
    ));
    s
}

/// Every model under the same load, with the seed's row on top. `cs/conn` is
/// the workers' voluntary context switches per connection: about the fleet
/// size under a thundering herd, about one when one worker is woken.
pub fn comparison(results: &[RunResult]) -> String {
    let mut s = format!(
        "{:<18} {:>8} {:>28} {:>6} {:>8} {:>9} {:>7}\n",
        "model", "conn/s", "connections per worker", "Jain", "max/min", "cs/conn", "p99_us"
    );
    let counts = |c: &[u64]| {
        c.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    };
    s.push_str(&format!(
        "{:<18} {:>8} {:>28} {:>6.2} {:>8} {:>9} {:>7}\n",
        "seed (Node.js)",
        "-",
        counts(&SEED),
        stats::jain(&SEED),
        ratio(stats::max_min_ratio(&SEED)),
        "-",
        "-"
    ));
    for r in results {
        let c: Vec<u64> = r.workers.iter().map(|w| w.accepted).collect();
        s.push_str(&format!(
            "{:<18} {:>8.0} {:>28} {:>6.2} {:>8} {:>9} {:>7}\n",
            r.summary.model,
            r.summary.conn_per_s,
            counts(&c),
            r.summary.jain,
            ratio(r.summary.max_min_ratio),
            format!("{:.2}", r.summary.switches_per_conn),
            r.summary.p99_us
        ));
    }
    s
}

/// The combined files at the top of the reproduce directory, rewritten after
/// every run so that an interruption keeps the runs already finished.
fn write_combined(
    dir: &std::path::Path,
    results: &[RunResult],
    started: &str,
    connections: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let summaries: Vec<SummaryRow> = results.iter().map(|r| r.summary.clone()).collect();
    let workers: Vec<WorkerRow> = results.iter().flat_map(|r| r.workers.clone()).collect();
    export::write_atomic(dir, "summary.csv", &export::csv::summary(&summaries)?)?;
    export::write_atomic(dir, "workers.csv", &export::csv::workers(&workers)?)?;
    let params = json!({
        "experiment": "reproduce",
        "seed": SEED,
        "workers": WORKERS,
        "connections": connections,
        "concurrency": concurrency,
        "models": ORDER.iter().map(|m| m.name()).collect::<Vec<_>>(),
    });
    export::write_atomic(
        dir,
        "meta.json",
        &Meta::collect(started.to_string(), params).to_json()?,
    )?;
    Ok(())
}
