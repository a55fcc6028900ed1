//! Everything that defines a run: the subject, the fleet, the load, when to
//! stop, and every knob; checked before anything starts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::subject::Subject;
use crate::UsageError;
use fleet::faults::Faults;
use fleet::model::{Model, ModelOpts};
use fleet::supervise::FleetKind;
use fleet::worker::{Service, Stall};
use loadgen::{OpenLoop, Stop};

/// Most connections a worker may hold open (`--worker-concurrency`).
pub const MAX_WORKER_CONCURRENCY: usize = 4096;

/// An offered rate as written: per second, or a fraction of the capacity a
/// sweep measures first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    OfCapacity(f64),
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(r) => write!(f, "{r}"),
            Rate::OfCapacity(x) => write!(f, "{}%", x * 100.0),
        }
    }
}

/// Where a run's network stack is (see [`crate::netns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Netns {
    /// A namespace made for the run, as root (else the host's, said so).
    #[default]
    Run,
    /// The host's namespace, as before namespaces: counters machine-wide.
    Host,
}

impl Netns {
    pub fn name(self) -> &'static str {
        match self {
            Netns::Run => "run",
            Netns::Host => "host",
        }
    }
}

impl std::str::FromStr for Netns {
    type Err = String;

    fn from_str(s: &str) -> Result<Netns, String> {
        match s {
            "run" => Ok(Netns::Run),
            "host" => Ok(Netns::Host),
            _ => Err(format!("'{s}' is not run or host")),
        }
    }
}

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
    /// The rate as written (a scenario may give a percentage of the
    /// capacity, resolved by [`RunSpec::at_capacity`]); `None` in a closed loop.
    pub rate_spec: Option<Rate>,
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
    /// Whether the run gets a network namespace of its own.
    pub netns: Netns,
    /// Per-namespace sysctls set in the run's namespace (`--sysctl KEY=VALUE`).
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// How often the accept queues are sampled (never slower than `interval`).
    pub queue_interval: Duration,
    /// Write `connections.csv`: every connection's milestones.
    pub connection_log: bool,
    /// `--attribute kernel`: count who accepted with the kernel's accept
    /// tracepoints (see [`crate::accepts`]).
    pub kernel_attribution: bool,
    /// What a worker is in the kernel's count (`--kernel-by`).
    pub kernel_by: crate::accepts::KernelBy,
    /// A target's processes, named (`--target-pid`), instead of found by
    /// its listening socket.
    pub target_pids: Vec<i32>,
}

impl RunSpec {
    /// Every field at its zero; [`crate::params::defaults`] gives the
    /// defaults, from the parameter table.
    pub(crate) fn blank(subject: Subject) -> RunSpec {
        RunSpec {
            subject,
            workers: 1,
            load: Load::Closed { concurrency: 32 },
            rate_spec: None,
            stop: Stop::Connections(20_000),
            threads: 1,
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
            netns: Netns::Run,
            sysctls: std::collections::BTreeMap::new(),
            queue_interval: Duration::from_millis(10),
            connection_log: false,
            kernel_attribution: false,
            kernel_by: crate::accepts::KernelBy::Process,
            target_pids: Vec::new(),
        }
    }

    /// The sysctls the run sets in its own namespace: `--sysctl`, and
    /// `--tcp-migrate-req` as the sysctl it is.
    pub fn sysctls_in_force(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(on) = self.tcp_migrate_req {
            all.push(("net.ipv4.tcp_migrate_req".into(), if on { "1" } else { "0" }.into()));
        }
        all
    }

    /// The queue sampling interval in force.
    pub fn queue_every(&self) -> Duration {
        self.queue_interval.min(self.interval)
    }

    /// The spec with a rate given as a fraction of the capacity resolved
    /// against `capacity` (conn/s, measured by the sweep).
    pub fn at_capacity(mut self, capacity: Option<f64>) -> RunSpec {
        if let (Some(Rate::OfCapacity(x)), Load::Open(o)) = (self.rate_spec, &mut self.load) {
            o.rate = (x * capacity.unwrap_or(0.0)).max(1.0);
        }
        self
    }

    /// The open files a run needs: its connections, two per worker, and some.
    fn files_needed(&self) -> u64 {
        self.load.max_open() as u64 + 2 * self.workers as u64 + 64
    }

    /// What the machine must allow for this run besides its capabilities
    /// (those are [`crate::doctor::check`]; [`crate::preflight::check`] asks
    /// both): root and a kernel with the sysctl for `--sysctl` and
    /// `--tcp-migrate-req`, a hard open-file limit high enough. Reads, never
    /// changes anything; [`RunSpec::prepare_process`] raises the limit.
    pub fn check_limits(&self) -> Result<(), UsageError> {
        if let Some((key, _)) = self.sysctls.iter().next() {
            if sys::geteuid() != 0 {
                return Err(UsageError(format!(
                    "--sysctl {key}=...: a sysctl is set in the run's own network namespace, which needs root"
                )));
            }
            for key in self.sysctls.keys() {
                let path = format!("/proc/sys/{}", key.replace('.', "/"));
                if !std::path::Path::new(&path).is_file() {
                    return Err(UsageError(format!(
                        "--sysctl {key}: this kernel has no such sysctl ({path})"
                    )));
                }
            }
        }
        if let Some(on) = self.tcp_migrate_req {
            if sys::geteuid() != 0 {
                return Err(UsageError(format!(
                    "--tcp-migrate-req {}: setting net.ipv4.tcp_migrate_req needs root",
                    if on { "on" } else { "off" }
                )));
            }
            if crate::machine::migrate_req().is_none() {
                return Err(UsageError(
                    "--tcp-migrate-req: this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 or later)".into(),
                ));
            }
        }
        let need = self.files_needed();
        let hard = sys::nofile_hard_limit().map_err(|e| UsageError(format!("cannot read the open-file limit: {e}")))?;
        if hard < need {
            let what = match self.load {
                Load::Closed { concurrency } => format!("--concurrency {concurrency}"),
                Load::Open(o) => format!("--max-inflight {}", o.max_inflight),
            };
            return Err(UsageError(format!(
                "{what} needs about {need} open files but RLIMIT_NOFILE allows at most {hard} (its hard \
                 limit): raise it (e.g. `ulimit -Hn {need}` as root) or open fewer connections at once"
            )));
        }
        Ok(())
    }

    /// What the run changes in the harness process when it starts: the soft
    /// open-file limit, raised towards what it needs (never above the hard one).
    pub fn prepare_process(&self) -> std::io::Result<()> {
        sys::raise_nofile(self.files_needed()).map(|_| ())
    }

    /// Checks what the spec alone says, before anything starts; usage
    /// errors. Pure: nothing on the machine is read or changed.
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
        if !self.sysctls.is_empty() && (self.netns == Netns::Host || matches!(self.subject, Subject::Target(_))) {
            return Err(UsageError(
                "--sysctl sets a value in the run's own network namespace: not with --netns host or a --target (the host's values are never changed)".into(),
            ));
        }
        if self.tcp_migrate_req.is_some() && model.is_none() {
            return Err(UsageError(
                "--tcp-migrate-req works on the harness's own fleets (--model)".into(),
            ));
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

    pub fn loadgen_config(&self, addr: SocketAddr, stop: Stop) -> loadgen::Config {
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
        cfg.trace = self.connection_log;
        cfg
    }
}
