//! One run: set up the model, fork the fleet, drive it with the load
//! generator, read the counters, tear down, reconcile, and build the records.
//!
//! Order matters: the fleet is forked while the harness is single-threaded,
//! and only then does the load generator start its threads. The listening
//! sockets exist before the fork, so no connection can arrive before a worker
//! could take it, and the load starts only once every worker says it is ready.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::json;

use crate::counters::Snapshot;
use crate::fleet::{Fleet, Teardown};
use crate::introspect::{self, Endpoint};
use crate::model::Model;
use crate::record::{round, SummaryRow, WorkerRow};
use crate::stats::{self, Quantiles};
use crate::sys;
use crate::UsageError;
use loadgen::{Report, Stop};

/// How long a fleet may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything that defines a run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub model: Model,
    pub workers: usize,
    pub concurrency: usize,
    pub stop: Stop,
    pub threads: usize,
    pub port: u16,
    pub gap: Duration,
    pub timeout: Duration,
}

impl RunSpec {
    pub fn parameters(&self) -> serde_json::Value {
        let (connections, duration_s) = match self.stop {
            Stop::Connections(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        json!({
            "model": self.model.name(),
            "workers": self.workers,
            "concurrency": self.concurrency,
            "connections": connections,
            "duration_s": duration_s,
            "threads": self.threads,
            "port": self.port,
            "gap_us": self.gap.as_micros() as u64,
            "timeout_ms": self.timeout.as_millis() as u64,
            "backlog": crate::model::BACKLOG,
        })
    }

    /// Checks what can be checked before anything starts; usage errors.
    pub fn validate(&self) -> Result<(), UsageError> {
        if !(1..=1024).contains(&self.workers) {
            return Err(UsageError(format!(
                "--workers {} is out of range: 1 to 1024",
                self.workers
            )));
        }
        if self.concurrency == 0 {
            return Err(UsageError(
                "--concurrency 0: at least 1 connection must be in flight".into(),
            ));
        }
        if self.threads == 0 || self.threads > self.concurrency {
            return Err(UsageError(format!(
                "--threads {} must be between 1 and the concurrency ({})",
                self.threads, self.concurrency
            )));
        }
        let need = self.concurrency as u64 + 2 * self.workers as u64 + 64;
        let have = sys::raise_nofile(need)
            .map_err(|e| UsageError(format!("cannot raise the open-file limit: {e}")))?;
        if have < need {
            return Err(UsageError(format!(
                "--concurrency {} needs about {need} open files but RLIMIT_NOFILE allows {have}",
                self.concurrency
            )));
        }
        Ok(())
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub summary: SummaryRow,
    pub workers: Vec<WorkerRow>,
    /// Conservation failures, each with its figures; empty when it holds.
    pub problems: Vec<String>,
    /// Workers or dispatcher that died during the run.
    pub early_exits: Vec<String>,
}

impl RunResult {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line saying whether conservation held, with the figures.
    pub fn conservation_line(&self) -> String {
        if self.ok() {
            format!(
                "conservation: ok ({} completed = {} accepted; every worker's count equals the responses attributed to it)",
                self.summary.completed, self.summary.accepted
            )
        } else {
            format!("conservation: FAILED: {}", self.problems.join("; "))
        }
    }
}

/// Binds the model's sockets on 127.0.0.1; a taken port is a usage error.
fn prepare(spec: &RunSpec) -> anyhow::Result<crate::model::Listeners> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, spec.port));
    spec.model.prepare(addr, spec.workers).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(UsageError(format!(
                "--port {} is already in use on 127.0.0.1",
                spec.port
            )))
        } else {
            anyhow!(e).context(format!("setting up {} on port {}", spec.model, spec.port))
        }
    })
}

/// Runs `spec` once and returns its records. The fleet is gone when this
/// returns, whatever happened.
pub fn execute(spec: &RunSpec) -> anyhow::Result<RunResult> {
    let listeners = prepare(spec)?;
    let addr = listeners.addr();
    let mut fleet =
        Fleet::start(spec.model, listeners, spec.workers, None).context("forking the fleet")?;
    fleet.wait_ready(READY_TIMEOUT)?;
    let endpoints = introspect::endpoints(&fleet);

    let mut cfg = loadgen::Config::new(addr, spec.concurrency, spec.stop);
    cfg.threads = spec.threads;
    cfg.gap = spec.gap;
    cfg.timeout = spec.timeout;
    cfg.cancel = Arc::new(AtomicBool::new(false));
    cfg.validate().map_err(UsageError)?;
    let cpu_before = sys::self_cpu();
    let report = loadgen::run(&cfg).context("running the load generator")?;
    let loadgen_cpu = sys::self_cpu().saturating_sub(cpu_before);

    let counts = fleet.counters.snapshot();
    let pids = fleet.pids.clone();
    let dispatcher = fleet.counters.slots() > fleet.workers();
    let teardown = fleet.stop().context("stopping the fleet")?;
    Ok(build(
        spec,
        &report,
        &counts,
        &pids,
        dispatcher,
        &endpoints,
        &teardown,
        loadgen_cpu,
    ))
}

fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0, 3)
}

#[allow(clippy::too_many_arguments)]
fn build(
    spec: &RunSpec,
    report: &Report,
    counts: &[Snapshot],
    pids: &[i32],
    has_dispatcher: bool,
    endpoints: &[Endpoint],
    teardown: &Teardown,
    loadgen_cpu: Duration,
) -> RunResult {
    let n = spec.workers;
    let accepted: Vec<u64> = counts[..n].iter().map(|c| c.accepted).collect();
    let shares = stats::shares(&accepted);
    let attributed_to = |i: usize| {
        let id = i.to_string();
        report.per_worker.iter().find(|w| w.id == id)
    };
    let workers: Vec<WorkerRow> = (0..n)
        .map(|i| {
            let c = &counts[i];
            let attributed = attributed_to(i);
            let q = attributed
                .map(|w| Quantiles::of(&w.latency))
                .unwrap_or_default();
            WorkerRow {
                model: spec.model.name().into(),
                workers: n,
                worker: i,
                pid: pids[i],
                accepted: c.accepted,
                share: round(shares[i], 6),
                spurious_wakeups: c.spurious_wakeups,
                cpu_ms: ms(teardown.worker_cpu[i]),
                p50_us: q.p50,
                p99_us: q.p99,
                p999_us: q.p999,
                max_us: q.max,
                wakeups: c.wakeups,
                empty_accepts: c.empty_accepts,
                voluntary_switches: teardown.worker_switches[i],
                worker_errors: c.errors,
                attributed: attributed.map(|w| w.completed).unwrap_or(0),
                dispatched: has_dispatcher.then_some(c.dispatched),
                listen_inode: endpoints[i].listen_inode,
                epoll_owner: endpoints[i].epoll_owner,
            }
        })
        .collect();

    let total_accepted: u64 = accepted.iter().sum();
    let mut problems = Vec::new();
    if report.completed != total_accepted {
        problems.push(format!(
            "the load generator completed {} connections but the workers accepted {total_accepted}",
            report.completed
        ));
    }
    for w in &workers {
        if w.attributed != w.accepted {
            problems.push(format!(
                "worker {} accepted {} but {} responses name it",
                w.worker, w.accepted, w.attributed
            ));
        }
        if let Some(d) = w.dispatched {
            if d != w.accepted {
                problems.push(format!(
                    "worker {} was handed {d} but took {}",
                    w.worker, w.accepted
                ));
            }
        }
    }
    let stray: Vec<String> = report
        .per_worker
        .iter()
        .filter(|w| w.id.parse::<usize>().map_or(true, |i| i >= n))
        .map(|w| format!("{} responses from unknown worker '{}'", w.completed, w.id))
        .collect();
    problems.extend(stray);
    let lost = report.errors.total();
    if lost > 0 {
        let classes: Vec<String> = report
            .errors
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        problems.push(format!(
            "{lost} connections failed ({})",
            classes.join(", ")
        ));
    }
    let dispatch_errors: u64 = counts[..n].iter().map(|c| c.dispatch_errors).sum();
    if dispatch_errors > 0 {
        problems.push(format!(
            "{dispatch_errors} hand-offs from the dispatcher failed"
        ));
    }
    for gone in &teardown.early_exits {
        problems.push(format!("{gone} during the run"));
    }

    let q = Quantiles::of(&report.latency);
    let e = &report.errors;
    let secs = report.elapsed.as_secs_f64();
    let summary = SummaryRow {
        model: spec.model.name().into(),
        workers: n,
        concurrency: spec.concurrency,
        connections: report.started,
        completed: report.completed,
        errors: lost,
        duration_s: round(secs, 4),
        conn_per_s: round(report.conn_per_s(), 1),
        jain: round(stats::jain(&accepted), 6),
        cov: round(stats::cov(&accepted), 6),
        max_min_ratio: round(stats::max_min_ratio(&accepted), 4),
        p50_us: q.p50,
        p99_us: q.p99,
        p999_us: q.p999,
        max_us: q.max,
        threads: spec.threads,
        gap_us: spec.gap.as_micros() as u64,
        accepted: total_accepted,
        spurious_wakeups: counts[..n].iter().map(|c| c.spurious_wakeups).sum(),
        empty_accepts: counts[..n].iter().map(|c| c.empty_accepts).sum(),
        switches_per_conn: round(
            teardown.worker_switches.iter().sum::<u64>() as f64 / report.completed.max(1) as f64,
            3,
        ),
        worker_cpu_ms: ms(teardown.worker_cpu.iter().sum()),
        dispatcher_cpu_ms: teardown.dispatcher_cpu.map(ms),
        loadgen_cpu_ms: ms(loadgen_cpu),
        err_refused: e.refused,
        err_reset: e.reset,
        err_timeout: e.timeout,
        err_addr_not_available: e.addr_not_available,
        err_malformed: e.malformed,
        err_other: e.other,
        conserved: problems.is_empty(),
    };
    RunResult {
        summary,
        workers,
        problems,
        early_exits: teardown.early_exits.clone(),
    }
}
