//! A real server the harness starts itself (Node.js, nginx): loaded like
//! the harness's own fleets, stopped, and cross-checked against the counts
//! its workers keep themselves.
//!
//! The harness cannot sample a server's counters while it runs, so its
//! `timeseries.csv` is made from the load generator's attribution, interval
//! by interval, and its own counts are written to `server-counts.csv`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use loadgen::Report;

use super::target::{attributed, attributed_ids};
use super::Running;
use crate::account::{Account, CountSource};
use crate::load::{write_attributed_timeseries, Driven};
use crate::servers::{write_server_counts, Own, Server, Started};
use crate::spec::RunSpec;
use fleet::counters::Snapshot;
use fleet::introspect::{self, Endpoint, Usage};

/// A server during its run.
pub struct RealServer {
    server: Box<dyn Started>,
    addr: SocketAddr,
    /// Its workers' pids.
    known: Vec<i32>,
    /// The warm-up's attribution, subtracted from the server's own counts.
    warm: Option<Report>,
    usage0: Vec<Usage>,
    endpoints: BTreeMap<i32, Endpoint>,
}

impl RealServer {
    pub fn start(s: Server, spec: &RunSpec) -> anyhow::Result<RealServer> {
        let server = s.start(spec.workers, spec.port)?;
        let addr = server.addr();
        let known = server.workers();
        Ok(RealServer {
            server,
            addr,
            known,
            warm: None,
            usage0: Vec::new(),
            endpoints: BTreeMap::new(),
        })
    }
}

fn usage_of(pids: &[i32]) -> Vec<Usage> {
    pids.iter().map(|&p| Usage::of(p).unwrap_or_default()).collect()
}

impl Running for RealServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn begin(&mut self, warm: Option<&Report>, _dir: &Path) -> anyhow::Result<()> {
        self.warm = warm.cloned();
        self.usage0 = usage_of(&self.known);
        let listeners = introspect::listening_inodes(self.addr.port());
        if let Some(inodes) = self.server.listen_inodes(&listeners) {
            self.endpoints = self
                .known
                .iter()
                .zip(inodes)
                .map(|(&pid, listen_inode)| {
                    (
                        pid,
                        Endpoint {
                            listen_inode,
                            epoll_owner: None,
                        },
                    )
                })
                .collect();
            return Ok(());
        }
        self.endpoints = self
            .known
            .iter()
            .map(|&pid| {
                // The socket in the worker's epoll set, else the one it holds.
                let polled = introspect::polled_listeners(pid, &listeners);
                let held = introspect::held_listeners(pid, &listeners);
                let listen_inode = [polled, held].into_iter().find(|l| l.len() == 1).map(|l| l[0]);
                (
                    pid,
                    Endpoint {
                        listen_inode,
                        epoll_owner: None,
                    },
                )
            })
            .collect();
        Ok(())
    }

    fn listen_inodes(&self) -> Vec<Option<u64>> {
        self.known
            .iter()
            .map(|p| self.endpoints.get(p).and_then(|e| e.listen_inode))
            .collect()
    }

    /// Whoever holds its listening socket (a master too), and its workers.
    fn kernel_pids(&self) -> Vec<i32> {
        let mut pids = crate::accepts::holders(self.addr.port());
        pids.extend(&self.known);
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn tick(&mut self, _t_ms: f64) -> anyhow::Result<()> {
        self.server.check_alive()
    }

    fn finish(self: Box<Self>, load: Option<&Driven>, dir: &Path) -> anyhow::Result<Account> {
        let usage1 = usage_of(&self.known);
        let keeps = self.server.keeps_counts();
        // Stopped whatever happened to the load, so it never outlives the run.
        let mut interrupted = None;
        let own: Option<BTreeMap<i32, Own>> = match self.server.stop() {
            // A server that keeps no count of its own: the attribution alone.
            Ok(own) => Some(own).filter(|_| keeps),
            // A signal during the stop loses the server's own counts: the run
            // is then cut short, checked against the attribution alone.
            Err(e) if e.downcast_ref::<crate::interrupt::Interrupted>().is_some() => {
                interrupted = crate::interrupt::interrupted();
                None
            }
            Err(e) => return Err(e.context("stopping the server")),
        };
        let Some(load) = load else {
            return Ok(Account::default());
        };
        let report = &load.report;
        let known: Vec<String> = self.known.iter().map(|p| p.to_string()).collect();
        // Every worker the server has, and (without its own counts) every id
        // a response named.
        let ids = match own {
            Some(_) => {
                let mut ids = known;
                crate::servers::sort_ids(&mut ids);
                ids
            }
            None => attributed_ids(report, &known),
        };
        let warm_of = |id: &str| {
            self.warm
                .as_ref()
                .and_then(|r| r.worker(id))
                .map_or((0, 0), |w| (w.completed, w.requests))
        };
        let counts: Vec<Snapshot> = ids
            .iter()
            .map(|id| match (&own, id.parse::<i32>()) {
                (Some(own), Ok(pid)) => {
                    let o = own.get(&pid).copied().unwrap_or_default();
                    let (wc, wr) = warm_of(id);
                    Snapshot {
                        accepted: o.connections.saturating_sub(wc),
                        requests: o.requests.saturating_sub(wr),
                        ..Snapshot::default()
                    }
                }
                _ => attributed(report, id),
            })
            .collect();
        if let Some(own) = &own {
            write_server_counts(dir, own).context("writing server-counts.csv")?;
        }
        write_attributed_timeseries(dir, &ids, &load.intervals)?;
        let source = if own.is_some() {
            CountSource::Server
        } else {
            CountSource::Attribution
        };
        let mut a = Account::attributed(ids, counts, source);
        a.usage = a
            .pids
            .iter()
            .map(|p| match self.known.iter().position(|k| k == p) {
                Some(i) => usage1[i].since(self.usage0[i]),
                None => Usage::default(),
            })
            .collect();
        a.endpoints = a
            .pids
            .iter()
            .map(|p| self.endpoints.get(p).cloned().unwrap_or_default())
            .collect();
        a.interrupted = interrupted;
        Ok(a)
    }
}
