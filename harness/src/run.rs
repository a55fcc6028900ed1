//! One run: set up the model, fork the fleet, drive it with the load
//! generator while sampling the workers' counters, tear down, reconcile, and
//! build the records.
//!
//! Order matters: the fleet is forked while the harness is single-threaded,
//! and only then does the load generator start its threads. The listening
//! sockets exist before the fork, so no connection can arrive before a worker
//! could take it, and the load starts only once every worker says it is ready.
//! A warm-up runs the same load first; everything measured after it is taken
//! as a difference from the counters and /proc figures at its end.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use serde_json::json;

use crate::conservation;
use crate::counters::Snapshot;
use crate::export::hlog::HlogWriter;
use crate::export::timeseries::TimeseriesWriter;
use crate::faults::{Faults, Injector};
use crate::fleet::{Fleet, FleetKind};
use crate::introspect::{self, Endpoint, Usage};
use crate::model::{Model, ModelOpts};
use crate::record::{self, SummaryRow, WorkerRow};
use crate::subject::Subject;

use crate::worker::{Service, Stall, WorkerPlan};
use crate::UsageError;
use loadgen::{IntervalHist, OpenLoop, Report, Stop};

/// Most connections a worker may hold open (`--worker-concurrency`).
pub const MAX_WORKER_CONCURRENCY: usize = 4096;

/// How long a fleet may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the load generator offers load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// A fixed number of connections in flight (closed loop).
    Closed { concurrency: usize },
    /// New connections at a rate, whatever the server does (open loop).
    Open(OpenLoop),
}

impl Load {
    /// (concurrency, rate, arrivals, max_inflight): each set only for the
    /// loop it belongs to, as the records and meta.json show them.
    pub fn columns(&self) -> (Option<usize>, Option<f64>, Option<&'static str>, Option<usize>) {
        match *self {
            Load::Closed { concurrency } => (Some(concurrency), None, None, None),
            Load::Open(o) => (None, Some(o.rate), Some(o.arrivals.name()), Some(o.max_inflight)),
        }
    }

    /// Connections that may be open at once.
    pub fn max_open(&self) -> usize {
        match self {
            Load::Closed { concurrency } => *concurrency,
            Load::Open(o) => o.max_inflight,
        }
    }
}

/// Everything that defines a run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The harness's own fleet under a model, or a real server.
    pub subject: Subject,
    pub workers: usize,
    pub load: Load,
    pub stop: Stop,
    pub threads: usize,
    pub port: u16,
    pub gap: Duration,
    pub timeout: Duration,
    pub requests_per_conn: u32,
    pub warmup: Duration,
    pub interval: Duration,
    pub seed: u64,
    pub sources: Vec<IpAddr>,
    pub stall: Option<(usize, Stall)>,
    pub record: bool,
    /// Listen backlog and the models' own settings.
    pub model_opts: ModelOpts,
    /// Time each request takes in a worker.
    pub service: Service,
    /// One worker (by index) whose service time is this many times longer.
    pub slow: Option<(usize, f64)>,
    /// Pin worker i to CPU i modulo the CPU count.
    pub pin_workers: bool,
    /// CPUs the load generator's threads are pinned to (empty: not pinned).
    pub pin_loadgen: Vec<usize>,
    /// Workers as processes or as threads of one process.
    pub fleet: FleetKind,
    /// Thread fleets of shared-epoll/epoll-exclusive: one epoll set for all.
    pub shared_epoll_set: bool,
    /// Connections a worker may have open at once: 1 serves them one at a
    /// time (blocking); more serves them from an event loop (epoll models only).
    pub worker_concurrency: usize,
    /// Workers killed, respawned or replaced during the run.
    pub faults: Faults,
    /// net.ipv4.tcp_migrate_req for the run (root only; restored after);
    /// `None`: left as it is.
    pub tcp_migrate_req: Option<bool>,
    /// Where the workers listen: a loopback address (default 127.0.0.1), or
    /// the unspecified address (0.0.0.0, ::) to listen on every interface;
    /// the load still goes to loopback.
    pub bind: IpAddr,
}

impl RunSpec {
    /// A closed-loop run with every other setting at its default.
    pub fn closed(subject: impl Into<Subject>, workers: usize, concurrency: usize, stop: Stop) -> RunSpec {
        RunSpec {
            subject: subject.into(),
            workers,
            load: Load::Closed { concurrency },
            stop,
            threads: loadgen::config::default_threads(concurrency),
            port: 0,
            gap: Duration::ZERO,
            timeout: loadgen::config::DEFAULT_TIMEOUT,
            requests_per_conn: 1,
            warmup: Duration::ZERO,
            interval: Duration::from_millis(100),
            seed: 1,
            sources: Vec::new(),
            stall: None,
            record: true,
            model_opts: ModelOpts::default(),
            service: Service::None,
            slow: None,
            pin_workers: false,
            pin_loadgen: Vec::new(),
            worker_concurrency: 1,
            fleet: FleetKind::Processes,
            shared_epoll_set: false,
            faults: Faults::default(),
            tcp_migrate_req: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    pub fn parameters(&self) -> serde_json::Value {
        let (connections, duration_s) = match self.stop {
            Stop::Connections(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        let (concurrency, rate, arrivals, max_inflight) = self.load.columns();
        json!({
            "model": self.subject.name(),
            "target": match &self.subject {
                Subject::Target(t) => Some(json!({
                    "address": t.addr.to_string(),
                    "attribute": t.attribution.to_string(),
                })),
                _ => None,
            },
            "workers": self.workers,
            "loop": if rate.is_some() { "open" } else { "closed" },
            "concurrency": concurrency,
            "rate_per_s": rate,
            "arrivals": arrivals,
            "max_inflight": max_inflight,
            "seed": self.seed,
            "connections": connections,
            "duration_s": duration_s,
            "requests_per_conn": self.requests_per_conn,
            "warmup_s": self.warmup.as_secs_f64(),
            "interval_ms": self.interval.as_secs_f64() * 1000.0,
            "threads": self.threads,
            "port": self.port,
            "gap_us": self.gap.as_micros() as u64,
            "timeout_ms": self.timeout.as_millis() as u64,
            "sources": self.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "stall": self.stall.map(|(w, s)| json!({
                "worker": w,
                "at_ms": s.at.as_secs_f64() * 1000.0,
                "for_ms": s.length.as_secs_f64() * 1000.0,
            })),
            "record_latency": self.record,
            "backlog": self.model_opts.backlog,
            "steer": self.model_opts.steer.name(),
            "service": self.service.to_string(),
            "slow_worker": self.slow.map(|(w, f)| json!({"worker": w, "factor": f})),
            "pin_workers": self.pin_workers,
            "pin_loadgen": self.pin_loadgen,
            "fleet": self.fleet.name(),
            "shared_epoll_set": self.shared_epoll_set,
            "worker_concurrency": self.worker_concurrency,
            "kill_worker": self.faults.kills.iter()
                .map(|k| json!({"worker": k.worker, "at_ms": k.at.as_secs_f64() * 1000.0}))
                .collect::<Vec<_>>(),
            "respawn": self.faults.respawn,
            "rolling_restart_ms": self.faults.rolling_restart.map(|d| d.as_secs_f64() * 1000.0),
            // The run's value (null: the machine's, in meta.json's sysctls).
            "tcp_migrate_req": self.tcp_migrate_req,
            "bind": self.bind.to_string(),
        })
    }

    /// Checks what can be checked before anything starts; usage errors.
    pub fn validate(&self) -> Result<(), UsageError> {
        let model = match &self.subject {
            Subject::Model(m) => Some(*m),
            other => {
                self.validate_external(other)?;
                None
            }
        };
        self.faults.check(model, self.workers, self.fleet).map_err(UsageError)?;
        if !(loadgen::config::is_loopback(self.bind) || self.bind.is_unspecified()) {
            return Err(UsageError(format!(
                "--bind {}: workers listen on a loopback address (127.0.0.0/8, ::1) or on every interface (0.0.0.0, ::), where the load still goes to loopback",
                self.bind
            )));
        }
        if let Some(on) = self.tcp_migrate_req {
            if model.is_none() {
                return Err(UsageError(
                    "--tcp-migrate-req works on the harness's own fleets (--model)".into(),
                ));
            }
            if sys::geteuid() != 0 {
                return Err(UsageError(format!(
                    "--tcp-migrate-req {}: setting net.ipv4.tcp_migrate_req needs root",
                    if on { "on" } else { "off" }
                )));
            }
            if crate::faults::migrate_req().is_none() {
                return Err(UsageError(
                    "--tcp-migrate-req: this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 or later)".into(),
                ));
            }
        }
        if self.faults.rolling_restart.is_some() && self.worker_concurrency > 1 {
            return Err(UsageError(format!(
                "--rolling-restart needs --worker-concurrency 1 (got {}): an event-loop worker does not retire yet",
                self.worker_concurrency
            )));
        }
        if !(1..=1024).contains(&self.workers) {
            return Err(UsageError(format!(
                "--workers {} is out of range: 1 to 1024",
                self.workers
            )));
        }
        let open = self.load.max_open();
        if let Load::Closed { concurrency: 0 } = self.load {
            return Err(UsageError(
                "--concurrency 0: at least 1 connection must be in flight".into(),
            ));
        }
        if self.threads == 0 || self.threads > open {
            return Err(UsageError(format!(
                "--threads {} must be between 1 and the connections that may be open ({open})",
                self.threads
            )));
        }
        for (flag, worker) in [
            ("--stall-worker", self.stall.map(|s| s.0)),
            ("--slow-worker", self.slow.map(|s| s.0)),
        ] {
            if let Some(w) = worker.filter(|w| *w >= self.workers) {
                return Err(UsageError(format!(
                    "{flag} {w}: there are only {} workers (0 to {})",
                    self.workers,
                    self.workers - 1
                )));
            }
        }
        if !(1..=MAX_WORKER_CONCURRENCY).contains(&self.worker_concurrency) {
            return Err(UsageError(format!(
                "--worker-concurrency {} is out of range: 1 to {MAX_WORKER_CONCURRENCY}",
                self.worker_concurrency
            )));
        }
        if self.shared_epoll_set
            && (self.fleet != FleetKind::Threads
                || !matches!(model, Some(Model::SharedEpoll | Model::EpollExclusive))
                || self.worker_concurrency > 1)
        {
            return Err(UsageError(format!(
                "--shared-epoll-set needs --fleet threads, --model shared-epoll or epoll-exclusive and one connection per worker (got {} {}, worker concurrency {})",
                self.fleet.name(),
                self.subject,
                self.worker_concurrency
            )));
        }
        if let Some(model) = model.filter(|m| self.worker_concurrency > 1 && !m.supports_worker_concurrency()) {
            let why = if model == Model::IoUring {
                "its multishot io_uring accept keeps taking connections however busy a worker is"
            } else {
                "its workers block in accept(2), so they cannot serve open connections meanwhile"
            };
            return Err(UsageError(format!(
                "--worker-concurrency {} does not work with {}: {why} (use shared-epoll, epoll-exclusive, \
                 accept-mutex, dispatch-rr or dispatch-least)",
                self.worker_concurrency, model
            )));
        }
        if self.interval.is_zero() {
            return Err(UsageError(
                "--interval 0: the sampling interval must be positive".into(),
            ));
        }
        let need = open as u64 + 2 * self.workers as u64 + 64;
        let have = sys::raise_nofile(need).map_err(|e| UsageError(format!("cannot raise the open-file limit: {e}")))?;
        if have < need {
            let what = match self.load {
                Load::Closed { concurrency } => format!("--concurrency {concurrency}"),
                Load::Open(o) => format!("--max-inflight {}", o.max_inflight),
            };
            return Err(UsageError(format!(
                "{what} needs about {need} open files but RLIMIT_NOFILE allows at most {have} (its hard \
                 limit): raise it (e.g. `ulimit -Hn {need}` as root) or open fewer connections at once"
            )));
        }
        let mut cfg = self.loadgen_config(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), self.stop);
        if let Subject::Target(t) = &self.subject {
            cfg.target = t.addr;
            cfg.attribution = t.attribution.clone();
            cfg.allow_remote = t.allow_remote;
        }
        cfg.intervals = None;
        cfg.validate().map_err(UsageError)
    }

    /// What a server the harness did not write cannot be asked to do: the
    /// fault injection and the worker settings belong to the harness's fleets.
    fn validate_external(&self, subject: &Subject) -> Result<(), UsageError> {
        let opts = ModelOpts::default();
        let fleet_only = [
            ("--stall-worker", self.stall.is_some()),
            ("--slow-worker", self.slow.is_some()),
            ("--service", self.service != Service::default()),
            ("--backlog", self.model_opts.backlog != opts.backlog),
            ("--steer", self.model_opts.steer != opts.steer),
            ("--pin-workers", self.pin_workers),
            ("--fleet", self.fleet != FleetKind::default()),
            ("--shared-epoll-set", self.shared_epoll_set),
            ("--worker-concurrency", self.worker_concurrency != 1),
        ];
        if let Some((flag, _)) = fleet_only.iter().find(|(_, set)| *set) {
            return Err(UsageError(format!(
                "{flag} applies to the harness's own fleets, not to {subject}"
            )));
        }
        if let Subject::Target(_) = subject {
            if self.port != 0 {
                return Err(UsageError(
                    "--port applies to a fleet or server the harness starts; --target names the address".into(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn loadgen_config(&self, addr: SocketAddr, stop: Stop) -> loadgen::Config {
        let mut cfg = match self.load {
            Load::Closed { concurrency } => loadgen::Config::new(addr, concurrency, stop),
            Load::Open(o) => loadgen::Config::new_open(addr, o, stop),
        };
        cfg.threads = self.threads;
        cfg.gap = self.gap;
        cfg.timeout = self.timeout;
        cfg.requests_per_conn = self.requests_per_conn;
        cfg.seed = self.seed;
        cfg.sources = self.sources.clone();
        cfg.record = self.record;
        cfg
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub summary: SummaryRow,
    pub workers: Vec<WorkerRow>,
    /// Conservation failures, each with its figures; empty when it holds.
    pub problems: Vec<String>,
    /// Whose counts the attribution was checked against.
    pub source: CountSource,
    /// The signal (SIGINT, SIGTERM) that cut the load short; `None` for a
    /// complete run. See `interrupt.rs`.
    pub interrupted: Option<i32>,
}

impl RunResult {
    /// Conservation held and the run was not cut short.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.interrupted.is_none()
    }

    /// One line saying whether conservation held, with the figures.
    pub fn conservation_line(&self) -> String {
        conservation::line(self)
    }
}

/// Binds the model's sockets on 127.0.0.1; a taken port is a usage error.
fn prepare(model: Model, spec: &RunSpec) -> anyhow::Result<crate::model::Listeners> {
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

/// Who counted the connections that the load generator's attribution is
/// checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSource {
    /// The harness's workers, in shared memory.
    Workers,
    /// A real server's own count (Node's workers, nginx's access log).
    Server,
    /// Nobody but the load generator: a `--target` server's own counts are
    /// unknown, so only the attribution itself can be checked.
    Attribution,
}

/// What was measured between the end of the warm-up and the end of the load.
pub struct Measured {
    pub report: Report,
    /// Each worker's id as its responses name it (`x-worker`): the index for
    /// the harness's fleets, the pid for real servers.
    pub ids: Vec<String>,
    /// Counters gained over the measured load, per worker.
    pub counts: Vec<Snapshot>,
    pub usage: Vec<Usage>,
    pub dispatcher_usage: Option<Usage>,
    pub loadgen_cpu: Duration,
    /// Each worker's pid (its thread id in a thread fleet), and the process
    /// it runs in.
    pub pids: Vec<i32>,
    pub processes: Vec<i32>,
    pub endpoints: Vec<Endpoint>,
    /// (from, to) of the injected stall, since the measured load began.
    pub stalls: Vec<Option<(Duration, Duration)>>,
    pub early_exits: Vec<String>,
    /// Workers SIGKILLed on purpose (`--kill-worker`): each may have taken
    /// up to `inflight` connections it never answered.
    pub killed: Vec<usize>,
    /// Connections a worker may have open at once.
    pub inflight: usize,
    /// Faults were injected: failed connections are what is measured, not a
    /// broken run.
    pub faulted: bool,
    /// accept-mutex: times a worker took the lock while another was polling.
    pub poll_overlaps: u64,
    pub source: CountSource,
}

/// Runs `spec` once, writing its time series and latency logs into `dir`,
/// and returns its records. The fleet (or server) is gone when this returns,
/// whatever happened.
pub fn execute(spec: &RunSpec, dir: &Path) -> anyhow::Result<RunResult> {
    let model = match &spec.subject {
        Subject::Model(m) => *m,
        _ => return crate::external::execute(spec, dir),
    };
    // Set before the sockets exist; put back when this returns, however.
    let _migrate = spec
        .tcp_migrate_req
        .map(crate::faults::MigrateReq::set)
        .transpose()
        .context("net.ipv4.tcp_migrate_req")?;
    let listeners = prepare(model, spec)?;
    // Listening on every interface, the load goes to the loopback one.
    let addr = match listeners.addr() {
        a if a.ip().is_unspecified() && a.is_ipv4() => SocketAddr::from((Ipv4Addr::LOCALHOST, a.port())),
        a if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        a => a,
    };
    let plan = WorkerPlan {
        service: spec.service,
        slow: spec.slow,
        stall: spec.stall,
        pin: spec.pin_workers,
        concurrency: spec.worker_concurrency,
        shared_epoll_set: spec.shared_epoll_set,
        spares: spec.faults.spares(spec.workers),
        backlog: spec.model_opts.backlog,
    };
    let mut fleet = Fleet::start(model, listeners, spec.workers, &plan, spec.fleet).context("forking the fleet")?;
    fleet.wait_ready(READY_TIMEOUT)?;
    let mut endpoints = introspect::endpoints(&fleet);

    if !spec.warmup.is_zero() {
        warm_up(&spec.loadgen_config(addr, Stop::Duration(spec.warmup)))?;
    }

    let usage_of = |pids: &[i32]| {
        pids.iter()
            .map(|&p| Usage::of(p).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let dispatcher = fleet.dispatcher;
    let baseline = fleet.counters.snapshot();
    let overlaps0 = fleet.counters.header().poll_overlaps.load(Ordering::Relaxed);
    let usage0 = usage_of(&fleet.pids);
    let disp0 = dispatcher.and_then(Usage::of);
    let epoch = sys::monotonic_ns();
    fleet.counters.header().epoch_ns.store(epoch, Ordering::Release);

    // Every slot a worker may take, replacements included (they stay at 0
    // until started).
    let slots = spec.workers + spec.faults.spares(spec.workers);
    let mut series = TimeseriesWriter::create(&dir.join("timeseries.csv"), baseline[..slots].to_vec())?;
    let mut faults = Injector::new(&spec.faults);
    let started = Instant::now();
    let Driven {
        report,
        loadgen_cpu,
        interrupted,
        ..
    } = drive(spec, spec.loadgen_config(addr, spec.stop), dir, |_| {
        faults
            .tick(&mut fleet, started.elapsed())
            .context("injecting a worker fault")?;
        series.sample(ms_since(started), &fleet.counters.snapshot()[..slots])?;
        fleet.check_children()?;
        Ok(())
    })?;
    let end = fleet.counters.snapshot();
    let overlaps1 = fleet.counters.header().poll_overlaps.load(Ordering::Relaxed);
    series.sample(ms_since(started), &end[..slots])?;
    series.finish()?;
    if !spec.faults.is_empty() {
        faults.write(dir)?;
    }
    // The workers that served: the first ones and the replacements started.
    let workers = fleet.slots_in_use();

    let usage1 = usage_of(&fleet.pids);
    let disp1 = dispatcher.and_then(Usage::of);
    let stalls = (0..workers)
        .map(|i| {
            let slot = fleet.counters.slot(i);
            let get = |c: &std::sync::atomic::AtomicU64| match c.load(Ordering::Relaxed) {
                0 => None,
                v => Some(Duration::from_nanos(v - 1)),
            };
            get(slot.stall_from).zip(get(slot.stall_to))
        })
        .collect();
    let pids = fleet.pids[..workers].to_vec();
    let processes = (0..workers).map(|i| fleet.process_of(i)).collect();
    // Replacements started during the run: what /proc shows now.
    if workers > spec.workers {
        let now = introspect::endpoints(&fleet);
        endpoints[spec.workers..workers].clone_from_slice(&now[spec.workers..workers]);
    }
    let teardown = fleet.stop().context("stopping the fleet")?;
    let counts = end.iter().zip(&baseline).map(|(e, b)| e.since(b)).collect();
    let measured = Measured {
        report,
        ids: (0..workers).map(|i| i.to_string()).collect(),
        counts,
        usage: usage1.iter().zip(&usage0).map(|(a, b)| a.since(*b)).collect(),
        dispatcher_usage: disp1.zip(disp0).map(|(a, b)| a.since(b)),
        loadgen_cpu,
        pids,
        processes,
        endpoints,
        stalls,
        early_exits: teardown.early_exits,
        killed: spec.faults.kills.iter().map(|k| k.worker).collect(),
        inflight: spec.worker_concurrency.max(1),
        faulted: !spec.faults.is_empty(),
        poll_overlaps: overlaps1 - overlaps0,
        source: CountSource::Workers,
    };
    let (summary, workers) = record::build(spec, &measured);
    let problems = conservation::check(&measured, &workers);
    let summary = SummaryRow {
        conserved: problems.is_empty(),
        complete: interrupted.is_none(),
        ..summary
    };
    Ok(RunResult {
        summary,
        workers,
        problems,
        source: measured.source,
        interrupted,
    })
}

/// What [`drive`] measured.
pub(crate) struct Driven {
    pub report: Report,
    /// CPU time of the harness process (the load generator) over the load.
    pub loadgen_cpu: Duration,
    /// What the load generator attributed to each worker, interval by interval.
    pub intervals: Vec<IntervalCounts>,
    /// The signal that cut the load short (see `interrupt.rs`).
    pub interrupted: Option<i32>,
}

/// Drives the measured load `cfg` while calling `sample` every
/// `spec.interval` (with the ms since the load began), writes the interval
/// latency log and the whole-run histograms into `dir`, and returns what the
/// load generator saw.
pub(crate) fn drive(
    spec: &RunSpec,
    mut cfg: loadgen::Config,
    dir: &Path,
    mut sample: impl FnMut(f64) -> anyhow::Result<()>,
) -> anyhow::Result<Driven> {
    let cpu0 = sys::self_cpu();
    // Intervals also without latency recording: they carry the per-worker
    // counts that make a real server's time series.
    let (tx, rx) = mpsc::channel::<IntervalHist>();
    cfg.intervals = Some(loadgen::Intervals {
        every: spec.interval,
        sink: tx,
    });
    let cancel = std::sync::Arc::clone(&cfg.cancel);
    // SIGINT/SIGTERM (interrupt.rs): cancel the load as a sampling error
    // would, but end the run normally, marked as cut short.
    let mut signal = crate::interrupt::interrupted();
    if signal.is_some() {
        cancel.store(true, Ordering::Relaxed);
    }
    let started = Instant::now();
    let wall = SystemTime::now();
    let threads = spec.threads;
    let record = spec.record;
    let (report, intervals) = std::thread::scope(|s| -> anyhow::Result<(Report, Vec<IntervalCounts>)> {
        let log = s.spawn(move || interval_log(rx, threads, dir, wall, record));
        // The load thread owns the config, so the interval channel closes when
        // the load ends and the log writer can finish.
        // It also owns `done`, whose closing wakes the sampler at once.
        let (done, finished) = mpsc::channel::<()>();
        let pin = &spec.pin_loadgen;
        let load = s.spawn(move || {
            let _done = done;
            if !pin.is_empty() {
                // The load generator's threads start from this one and inherit its CPUs.
                sys::pin_to(pin).context("pinning the load generator")?;
            }
            loadgen::run(&cfg).context("running the load generator")
        });
        let mut next = started + spec.interval;
        let mut sampled = Ok(());
        while let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(
            next.min(Instant::now() + crate::interrupt::POLL)
                .saturating_duration_since(Instant::now()),
        ) {
            // Interrupted: start nothing new, let in-flight connections finish.
            if signal.is_none() {
                signal = crate::interrupt::interrupted();
                if signal.is_some() {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            if Instant::now() < next {
                continue;
            }
            if let Err(e) = sample(ms_since(started)) {
                // Stop the load at once; report this error, not the load's.
                cancel.store(true, Ordering::Relaxed);
                sampled = Err(e);
                break;
            }
            next += spec.interval;
            let now = Instant::now();
            if next < now {
                next = now + spec.interval;
            }
        }
        let report = load.join().map_err(|_| anyhow!("the load generator panicked"))?;
        let intervals = log.join().map_err(|_| anyhow!("the interval log writer panicked"))??;
        sampled?;
        Ok((report?, intervals))
    })?;
    let loadgen_cpu = sys::self_cpu().saturating_sub(cpu0);
    write_overall_histograms(dir, &report, report.run_start)?;
    Ok(Driven {
        report,
        loadgen_cpu,
        intervals,
        interrupted: signal,
    })
}

/// Runs a warm-up load `cfg` to its end, or until a SIGINT/SIGTERM
/// (interrupt.rs) cancels it; the measured load after it then starts
/// nothing and the run is marked as cut short.
pub(crate) fn warm_up(cfg: &loadgen::Config) -> anyhow::Result<Report> {
    let cancel = std::sync::Arc::clone(&cfg.cancel);
    std::thread::scope(|s| -> anyhow::Result<Report> {
        let load = s.spawn(|| loadgen::run(cfg));
        while !load.is_finished() {
            if crate::interrupt::interrupted().is_some() {
                cancel.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let report = load
            .join()
            .map_err(|_| anyhow!("the warm-up load generator panicked"))?;
        Ok(report?)
    })
    .context("warm-up load")
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// What the load generator attributed to each worker in one interval, all
/// threads merged: the time series of a server the harness cannot sample.
#[derive(Debug, Clone, Default)]
pub struct IntervalCounts {
    /// End of the interval, since the load began.
    pub end: Duration,
    /// Worker id -> (connections completed, requests answered).
    pub workers: std::collections::BTreeMap<String, (u64, u64)>,
}

type Pending = std::collections::BTreeMap<u64, (IntervalHist, usize)>;

/// Receives each load generator thread's interval histograms, merges those
/// of the same interval, writes them in order to `latency.hlog` (when
/// latency is recorded) and returns each interval's per-worker counts.
/// Memory stays flat but for those counts: an interval is written as soon as
/// every thread has sent it.
fn interval_log(
    rx: mpsc::Receiver<IntervalHist>,
    threads: usize,
    dir: &Path,
    start: SystemTime,
    record: bool,
) -> anyhow::Result<Vec<IntervalCounts>> {
    let mut writer: Option<HlogWriter> = None;
    let mut pending = Pending::default();
    let mut counts = Vec::new();
    let mut next = 0u64;
    let mut flush = |pending: &mut Pending, writer: &mut Option<HlogWriter>, all: bool| -> anyhow::Result<()> {
        while let Some(entry) = pending.first_entry() {
            if *entry.key() != next && !all {
                break;
            }
            if entry.get().1 < threads && !all {
                break;
            }
            let (h, _) = entry.remove();
            if let Some(w) = writer.as_mut() {
                w.write(None, h.start, h.length, &h.total)?;
            }
            let mut workers = std::collections::BTreeMap::new();
            for w in &h.workers {
                let e: &mut (u64, u64) = workers.entry(w.id.clone()).or_default();
                e.0 += w.connections;
                e.1 += w.requests;
            }
            counts.push(IntervalCounts {
                end: h.start + h.length,
                workers,
            });
            next = h.index + 1;
        }
        Ok(())
    };
    for h in rx {
        if writer.is_none() && record {
            writer = Some(HlogWriter::create(
                &dir.join("latency.hlog"),
                start,
                "harness: corrected total latency (us) of the requests completed in each interval, all workers",
            )?);
        }
        match pending.get_mut(&h.index) {
            Some((merged, n)) => {
                merged
                    .total
                    .add(&h.total)
                    .map_err(|e| anyhow!("merging interval histograms: {e:?}"))?;
                merged.workers.extend(h.workers);
                *n += 1;
            }
            None => {
                pending.insert(h.index, (h, 1));
            }
        }
        flush(&mut pending, &mut writer, false)?;
    }
    flush(&mut pending, &mut writer, true)?;
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(counts)
}

/// `histograms.hlog`: the whole run's histograms, one tagged line each, so
/// runs can be merged without loss.
fn write_overall_histograms(dir: &Path, report: &Report, start: SystemTime) -> anyhow::Result<()> {
    let mut w = HlogWriter::create(
        &dir.join("histograms.hlog"),
        start,
        "harness: whole-run latency histograms (us); tags: <phase> overall, worker<id>-<phase> per worker",
    )?;
    let length = report.elapsed;
    let phases = |p: &loadgen::Phases| {
        [
            ("total", p.total.clone()),
            ("total_uncorrected", p.total_uncorrected.clone()),
            ("connect", p.connect.clone()),
            ("ttfb", p.ttfb.clone()),
        ]
    };
    for (name, h) in phases(&report.phases) {
        w.write(Some(name), Duration::ZERO, length, &h)?;
    }
    for wr in &report.per_worker {
        let id: String = wr
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        for (name, h) in phases(&wr.phases) {
            w.write(Some(&format!("worker{id}-{name}")), Duration::ZERO, length, &h)?;
        }
    }
    w.finish()?;
    Ok(())
}
