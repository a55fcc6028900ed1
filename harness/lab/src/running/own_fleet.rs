//! The harness's own fleet under one accept model: forked, readied,
//! sampled every interval from its shared-memory counters (which also make
//! its time series), faulted as asked, and torn down.
//!
//! Order matters: the listening sockets exist before the fork, so no
//! connection can arrive before a worker could take it; the fleet is forked
//! while the harness is single-threaded, before the load generator starts
//! its threads; the load starts only once every worker says it is ready.
//! Everything measured is a difference from the counters and /proc figures
//! taken in [`Running::begin`], after any warm-up.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use loadgen::Report;
use records::timeseries::{TimeseriesRow, TimeseriesWriter};

use super::Running;
use crate::account::{Account, CountSource};
use crate::load::Driven;
use crate::machine::MigrateReq;
use crate::spec::RunSpec;
use crate::UsageError;
use fleet::counters::Snapshot;
use fleet::faults::Injector;
use fleet::introspect::{self, Endpoint, Usage};
use fleet::model::{Listeners, Model};
use fleet::supervise::Fleet;
use fleet::worker::WorkerPlan;

/// How long a fleet may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A fleet during its run.
pub struct OwnFleet {
    fleet: Fleet,
    addr: SocketAddr,
    /// Every slot a worker may take, replacements included (they stay at 0
    /// until started).
    slots: usize,
    workers: usize,
    inflight: usize,
    kills: Vec<usize>,
    faulted: bool,
    injector: Injector,
    endpoints: Vec<Endpoint>,
    /// Taken in `begin`.
    baseline: Vec<Snapshot>,
    last: Vec<Snapshot>,
    overlaps0: u64,
    usage0: Vec<Usage>,
    disp0: Option<Usage>,
    started: Instant,
    series: Option<TimeseriesWriter>,
    /// Put back when the fleet is gone (dropped after it).
    _migrate: Option<MigrateReq>,
}

/// Binds the model's sockets; a taken port is a usage error.
fn prepare(model: Model, spec: &RunSpec) -> anyhow::Result<Listeners> {
    let addr = SocketAddr::new(spec.bind, spec.port);
    // A dispatcher gets a channel for each replacement too, made up front.
    let channels = match model.has_dispatcher() {
        true => spec.workers + spec.faults.spares(spec.workers),
        false => spec.workers,
    };
    model.prepare(addr, channels, &spec.model_opts).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(UsageError(format!(
                "--port {} is already in use on {}",
                spec.port, spec.bind
            )))
        } else {
            anyhow!(e).context(format!("setting up {model} on port {}", spec.port))
        }
    })
}

fn usage_of(pids: &[i32]) -> Vec<Usage> {
    pids.iter().map(|&p| Usage::of(p).unwrap_or_default()).collect()
}

impl OwnFleet {
    /// Sets the sysctl the run asks for, binds the sockets, forks the fleet
    /// and waits until it is ready (or `give_up` says so).
    pub fn start(model: Model, spec: &RunSpec, give_up: &dyn Fn() -> bool) -> anyhow::Result<OwnFleet> {
        // Set before the sockets exist; put back when the run is over, however.
        let migrate = spec
            .tcp_migrate_req
            .map(MigrateReq::set)
            .transpose()
            .context("net.ipv4.tcp_migrate_req")?;
        let listeners = prepare(model, spec)?;
        // Listening on every interface, the load goes to the loopback one.
        let addr = match listeners.addr() {
            a if a.ip().is_unspecified() && a.is_ipv4() => SocketAddr::from((Ipv4Addr::LOCALHOST, a.port())),
            a if a.ip().is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, a.port())),
            a => a,
        };
        let spares = spec.faults.spares(spec.workers);
        let plan = WorkerPlan {
            service: spec.service,
            slow: spec.slow,
            stall: spec.stall,
            pin: spec.pin_workers,
            concurrency: spec.worker_concurrency,
            shared_epoll_set: spec.shared_epoll_set,
            spares,
            backlog: spec.model_opts.backlog,
        };
        let mut fleet = Fleet::start(model, listeners, spec.workers, &plan, spec.fleet).context("forking the fleet")?;
        fleet.wait_ready(READY_TIMEOUT, give_up)?;
        let endpoints = introspect::endpoints(&fleet);
        Ok(OwnFleet {
            fleet,
            addr,
            slots: spec.workers + spares,
            workers: spec.workers,
            inflight: spec.worker_concurrency.max(1),
            kills: spec.faults.kills.iter().map(|k| k.worker).collect(),
            faulted: !spec.faults.is_empty(),
            injector: Injector::new(&spec.faults),
            endpoints,
            baseline: Vec::new(),
            last: Vec::new(),
            overlaps0: 0,
            usage0: Vec::new(),
            disp0: None,
            started: Instant::now(),
            series: None,
            _migrate: migrate,
        })
    }

    /// One row per slot of `timeseries.csv`: what each gained since the
    /// last sample.
    fn sample(&mut self, t_ms: f64) -> anyhow::Result<()> {
        let now = self.fleet.counters.snapshot();
        if let Some(series) = self.series.as_mut() {
            for (worker, (n, l)) in now[..self.slots].iter().zip(&self.last).enumerate() {
                series.write(&TimeseriesRow {
                    t_ms,
                    worker,
                    accepted: n.accepted - l.accepted,
                    requests: n.requests - l.requests,
                    spurious_wakeups: n.spurious_wakeups - l.spurious_wakeups,
                    active: n.active,
                })?;
            }
        }
        self.last = now[..self.slots].to_vec();
        Ok(())
    }
}

impl Running for OwnFleet {
    /// Every worker's process (spares included) and the dispatcher.
    fn kernel_pids(&self) -> Vec<i32> {
        let mut pids = self.fleet.processes();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn begin(&mut self, _warm: Option<&Report>, dir: &Path) -> anyhow::Result<()> {
        self.baseline = self.fleet.counters.snapshot();
        self.last = self.baseline[..self.slots].to_vec();
        self.overlaps0 = self.fleet.counters.header().poll_overlaps.load(Ordering::Relaxed);
        self.usage0 = usage_of(&self.fleet.pids);
        self.disp0 = self.fleet.dispatcher.and_then(Usage::of);
        self.fleet
            .counters
            .header()
            .epoch_ns
            .store(sys::monotonic_ns(), Ordering::Release);
        self.series = Some(TimeseriesWriter::create(&dir.join(records::names::TIMESERIES))?);
        self.started = Instant::now();
        Ok(())
    }

    fn epoch_ns(&self) -> Option<u64> {
        match self.fleet.counters.header().epoch_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(ns),
        }
    }

    fn listen_inodes(&self) -> Vec<Option<u64>> {
        self.endpoints.iter().map(|e| e.listen_inode).collect()
    }

    fn tick(&mut self, t_ms: f64) -> anyhow::Result<()> {
        // One clock for the faults and the samples: the load's own.
        if let Some(start) = Instant::now().checked_sub(Duration::from_secs_f64(t_ms / 1000.0)) {
            self.started = start;
        }
        self.injector
            .tick(&mut self.fleet, self.started.elapsed())
            .context("injecting a worker fault")?;
        self.sample(t_ms)?;
        self.fleet.check_children()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, load: Option<&Driven>, dir: &Path) -> anyhow::Result<Account> {
        let end = self.fleet.counters.snapshot();
        let overlaps1 = self.fleet.counters.header().poll_overlaps.load(Ordering::Relaxed);
        if load.is_some() {
            let t_ms = crate::load::ms_since(self.started);
            self.sample(t_ms)?;
            if let Some(series) = self.series.take() {
                series.finish()?;
            }
            if self.faulted {
                let mut w = csv::Writer::from_writer(Vec::new());
                if self.injector.events.is_empty() {
                    w.write_record(["t_ms", "worker", "pid", "event", "replaces"])?;
                }
                for e in &self.injector.events {
                    w.serialize(e)?;
                }
                let bytes = w.into_inner().map_err(|e| anyhow!("csv: {e}"))?;
                records::write_atomic(dir, records::names::FAULTS, &bytes)?;
            }
        }
        // The workers that served: the first ones and the replacements started.
        let workers = self.fleet.slots_in_use();
        let usage1 = usage_of(&self.fleet.pids);
        let disp1 = self.fleet.dispatcher.and_then(Usage::of);
        let stalls = (0..workers)
            .map(|i| {
                let slot = self.fleet.counters.slot(i);
                let get = |c: &std::sync::atomic::AtomicU64| match c.load(Ordering::Relaxed) {
                    0 => None,
                    v => Some(Duration::from_nanos(v - 1)),
                };
                get(slot.stall_from).zip(get(slot.stall_to))
            })
            .collect();
        let pids = self.fleet.pids[..workers].to_vec();
        let processes = (0..workers).map(|i| self.fleet.process_of(i)).collect();
        // Replacements started during the run: what /proc shows now.
        let mut endpoints = self.endpoints.clone();
        if workers > self.workers {
            let now = introspect::endpoints(&self.fleet);
            endpoints[self.workers..workers].clone_from_slice(&now[self.workers..workers]);
        }
        let hurry = || crate::interrupt::interrupted().is_some();
        let teardown = self.fleet.stop(&hurry).context("stopping the fleet")?;
        Ok(Account {
            ids: (0..workers).map(|i| i.to_string()).collect(),
            counts: end.iter().zip(&self.baseline).map(|(e, b)| e.since(b)).collect(),
            usage: usage1.iter().zip(&self.usage0).map(|(a, b)| a.since(*b)).collect(),
            dispatcher_usage: disp1.zip(self.disp0).map(|(a, b)| a.since(b)),
            pids,
            processes,
            endpoints,
            stalls,
            early_exits: teardown.early_exits,
            killed: self.kills.clone(),
            inflight: self.inflight,
            faulted: self.faulted,
            poll_overlaps: overlaps1 - self.overlaps0,
            source: CountSource::Workers,
            interrupted: None,
            kernel: None,
            redistributes: false,
        })
    }
}
