//! A server at an address the user names (`--target`, a
//! [`crate::subject::Target`]), which the harness did not start: its workers are whatever ids the responses carry, and as
//! its own counts are unknown, conservation can check only the attribution.

use std::net::SocketAddr;

use crate::subject::Target;
use std::path::Path;

use loadgen::{Attribution, Report};

use super::Running;
use crate::account::{Account, CountSource};
use crate::load::{write_attributed_timeseries, Driven};
use fleet::counters::Snapshot;

/// A target during its run.
pub struct AtAddress(Target);

impl AtAddress {
    pub fn new(t: Target) -> AtAddress {
        AtAddress(t)
    }
}

impl Running for AtAddress {
    fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    fn attribution(&self) -> (Attribution, bool) {
        (self.0.attribution.clone(), self.0.allow_remote)
    }

    fn begin(&mut self, _warm: Option<&Report>, _dir: &Path) -> anyhow::Result<()> {
        Ok(())
    }

    fn tick(&mut self, _t_ms: f64) -> anyhow::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>, load: Option<&Driven>, dir: &Path) -> anyhow::Result<Account> {
        let Some(load) = load else {
            return Ok(Account::default());
        };
        let ids = attributed_ids(&load.report, &[]);
        let counts = ids.iter().map(|id| attributed(&load.report, id)).collect();
        write_attributed_timeseries(dir, &ids, &load.intervals)?;
        Ok(Account::attributed(ids, counts, CountSource::Attribution))
    }
}

/// The ids of `known` workers, and of every worker a response named, in
/// order (numbers numerically, then names).
pub(crate) fn attributed_ids(report: &Report, known: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = known.to_vec();
    for w in &report.per_worker {
        if w.id != loadgen::report::UNKNOWN_WORKER && !ids.contains(&w.id) {
            ids.push(w.id.clone());
        }
    }
    crate::servers::sort_ids(&mut ids);
    ids
}

/// The connections and requests the load generator attributed to `id`.
pub(crate) fn attributed(report: &Report, id: &str) -> Snapshot {
    let (accepted, requests) = report.worker(id).map_or((0, 0), |w| (w.completed, w.requests));
    Snapshot {
        accepted,
        requests,
        ..Snapshot::default()
    }
}
