//! A subject set up for one run, behind one trait, so one runner
//! ([`crate::run::execute`]) drives the harness's own fleet, a real server
//! and a target the same way and they end in the same records: a table or a
//! chart can put nginx's `accept_mutex off` beside the harness's
//! `epoll-exclusive`. One module each: [`own_fleet`], [`server`],
//! [`target`].

pub mod own_fleet;
pub mod server;
pub mod target;

use std::net::SocketAddr;
use std::path::Path;

use crate::account::Account;
use crate::load::Driven;
use crate::spec::RunSpec;
use crate::subject::Subject;
use loadgen::{Attribution, Report};

/// A subject set up for one run: what the runner asks of it.
///
/// The order is fixed: [`start`] (the fleet is forked and ready,
/// or the server answers), the warm-up against [`Running::addr`],
/// [`Running::begin`] (baselines), [`Running::tick`] every interval of the
/// measured load, and [`Running::finish`], which is called whatever
/// happened to the load, so the subject never outlives the run.
pub trait Running {
    /// Where the load goes.
    fn addr(&self) -> SocketAddr;
    /// How responses name their worker, and whether the address may be off
    /// loopback.
    fn attribution(&self) -> (Attribution, bool) {
        (Attribution::default(), false)
    }
    /// After the warm-up (its report, if there was one), before the
    /// measured load: take the baselines everything is measured from.
    fn begin(&mut self, warm: Option<&Report>, dir: &Path) -> anyhow::Result<()>;
    /// Every interval of the measured load, `t_ms` since it began: sample,
    /// inject faults, check the subject is alive. An error stops the load.
    fn tick(&mut self, t_ms: f64) -> anyhow::Result<()>;
    /// After the load (`None` if it failed): stop the subject, write its own
    /// files into `dir` (the time series, faults, a server's own counts),
    /// and account for its workers.
    fn finish(self: Box<Self>, load: Option<&Driven>, dir: &Path) -> anyhow::Result<Account>;
    /// The run's epoch (CLOCK_MONOTONIC ns), set in [`Running::begin`],
    /// if the subject keeps one (a fleet: the origin of its stalls).
    fn epoch_ns(&self) -> Option<u64> {
        None
    }
    /// The inode of the listening socket each worker takes connections
    /// from, as /proc showed it (by worker index; empty where unknown).
    fn listen_inodes(&self) -> Vec<Option<u64>> {
        Vec::new()
    }
    /// The processes whose accepts the kernel counts (`--attribute
    /// kernel`): by default every one that holds a socket listening on the
    /// run's port.
    fn kernel_pids(&self) -> Vec<i32> {
        crate::accepts::holders(self.addr().port())
    }
}

/// Sets `subject` up for the run `spec`: forks and readies a fleet, starts
/// a server, or takes the target's address; `give_up` ends a wait for a
/// fleet to be ready (a signal).
pub fn start(subject: &Subject, spec: &RunSpec, give_up: &dyn Fn() -> bool) -> anyhow::Result<Box<dyn Running>> {
    Ok(match subject {
        Subject::Model(m) => Box::new(own_fleet::OwnFleet::start(*m, spec, give_up)?),
        Subject::Server(s) => Box::new(server::RealServer::start(*s, spec)?),
        Subject::Target(t) => Box::new(target::AtAddress::new(t.clone())),
    })
}
