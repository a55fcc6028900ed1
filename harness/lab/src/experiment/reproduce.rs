//! `harness reproduce`: the seed article's experiment, rerun.
//!
//! The seed shows four Node.js workers sharing one listening handle getting
//! 14561 / 8329 / 2356 / 4885 connections. Node (libuv) workers each poll the
//! shared socket with their own epoll set, which is the `shared-epoll` model.
//! This runs the shipped scenario `scenarios/seed-table.toml` through the
//! sweep machinery: that model with four workers at a load where the
//! unevenness shows, then the same load under every other model. It prints
//! the first run in the seed's own words beside the seed's fairness, and all
//! of them as one table.

use std::path::{Path, PathBuf};

use crate::account::RunResult;
use crate::output::out_dir;
use crate::scenario::Scenario;
use crate::sweep;
use records::stats::{self, show};
use records::text::ratio;

pub use records::seed::{CONCURRENCY, CONNECTIONS, SEED};
/// The scenario `reproduce` runs (file order, no shuffling).
pub const SCENARIO: &str = include_str!("../../../../scenarios/seed-table.toml");
const SCENARIO_PATH: &str = "scenarios/seed-table.toml";

/// The shipped scenario with `connections` and `concurrency` set.
pub fn scenario(connections: u64, concurrency: usize) -> Result<Scenario, crate::UsageError> {
    Scenario::parse(Path::new(SCENARIO_PATH), &with_load(SCENARIO, connections, concurrency))
}

/// A shipped scenario's text with its `connections` and `concurrency` lines
/// replaced.
pub fn with_load(text: &str, connections: u64, concurrency: usize) -> String {
    text.lines()
        .map(|line| match line.split('=').next().map(str::trim) {
            Some("connections") => format!("connections = {connections}"),
            Some("concurrency") => format!("concurrency = {concurrency}"),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an experiment did: the sweep, and what to print about it.
pub struct Done {
    pub outcome: sweep::Outcome,
    /// The tables and lines to print, ending with where the files are.
    pub text: String,
    /// Every run conserved (and, for real servers, every own count agreed).
    pub ok: bool,
}

/// Runs the seed's experiment into `out` (or `results/<stamp>-reproduce`).
pub fn run(out: Option<PathBuf>, connections: u64, concurrency: usize) -> anyhow::Result<Done> {
    let scn = scenario(connections, concurrency)?;
    let (_, stamp) = records::meta::utc_now();
    let opts = sweep::Options {
        out: out_dir(out, &stamp, "reproduce"),
        resume: false,
        seed: Some(0),
        quiet: false,
    };
    let outcome = sweep::run(&scn, &opts)?;
    let results: Vec<&RunResult> = outcome.results.iter().map(|(_, r)| r).collect();
    let mut text = String::new();
    if let Some(first) = results.first() {
        text.push_str(&seed_form(first));
    }
    text.push('\n');
    text.push_str(&comparison(&results));
    for r in &results {
        text.push_str(&format!("{}: {}\n", r.summary.model, crate::conservation::line(r)));
    }
    text.push_str(&format!("files: {}\n", outcome.dir.display()));
    let ok = outcome.ok();
    Ok(Done { outcome, text, ok })
}

/// The seed's own form, then fairness beside the seed's.
fn seed_form(r: &RunResult) -> String {
    let mut s = String::new();
    for w in &r.workers {
        s.push_str(&format!("worker {} got {} connections\n", w.pid, w.accepted));
    }
    s.push_str(&format!(
        "Jain's fairness index {} (seed: {}), max/min {} (seed: {}), at {:.0} conn/s with {} connections in flight\n",
        show(r.summary.jain, 2),
        show(stats::jain(&SEED), 2),
        ratio(r.summary.max_min_ratio),
        show(stats::max_min_ratio(&SEED), 1),
        r.summary.conn_per_s,
        r.param("concurrency").unwrap_or("?")
    ));
    s
}

/// Every model under the same load, with the seed's row on top. `cs/conn` is
/// the workers' voluntary context switches per connection: about the fleet
/// size under a thundering herd, about one when one worker is woken.
pub fn comparison(results: &[&RunResult]) -> String {
    let mut s = format!(
        "{:<18} {:>8} {:>28} {:>6} {:>8} {:>9} {:>7}\n",
        "model", "conn/s", "connections per worker", "Jain", "max/min", "cs/conn", "p99_us"
    );
    let counts = |c: &[u64]| c.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" / ");
    s.push_str(&format!(
        "{:<18} {:>8} {:>28} {:>6} {:>8} {:>9} {:>7}\n",
        "seed (Node.js)",
        "-",
        counts(&SEED),
        show(stats::jain(&SEED), 2),
        ratio(stats::max_min_ratio(&SEED)),
        "-",
        "-"
    ));
    for r in results {
        let c: Vec<u64> = r.workers.iter().map(|w| w.accepted).collect();
        s.push_str(&format!(
            "{:<18} {:>8.0} {:>28} {:>6} {:>8} {:>9} {:>7}\n",
            r.summary.model,
            r.summary.conn_per_s,
            counts(&c),
            show(r.summary.jain, 2),
            ratio(r.summary.max_min_ratio),
            format!("{:.2}", r.summary.switches_per_conn),
            r.summary.p99_us
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet::model::Model;

    #[test]
    fn the_shipped_scenario_is_the_seed_experiment() {
        let s = scenario(CONNECTIONS, CONCURRENCY).unwrap();
        assert!(!s.shuffle);
        assert_eq!(s.points.len(), 5);
        assert_eq!(
            s.points[0].subject(),
            Model::SharedEpoll.into(),
            "the seed's model runs first"
        );
        let spec = s.points[0].spec(None);
        assert_eq!(spec.workers, 4);
        assert!(matches!(spec.load, crate::spec::Load::Closed { concurrency: 2 }));
        assert!(matches!(spec.stop, loadgen::Stop::Connections(30_000)));
        let small = scenario(500, 3).unwrap().points[0].spec(None);
        assert!(matches!(small.stop, loadgen::Stop::Connections(500)));
        assert!(matches!(small.load, crate::spec::Load::Closed { concurrency: 3 }));
    }
}
