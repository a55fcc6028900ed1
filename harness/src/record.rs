//! The records a run produces: one row per worker, one summary row per run,
//! and how they are built from what was measured.
//!
//! These types are the schema of `workers.csv` and `summary.csv` (field order
//! is column order), shared by every exporter and by `reproduce`. Latency
//! columns are microseconds from the load generator's HdrHistograms:
//! `p50_us`..`max_us` are the corrected total (from each connection's
//! intended start; the same as the uncorrected one in a closed loop), then
//! each phase has its own `<phase>_p50_us`, `_p99_us`, `_p999_us`.

use serde::Serialize;

use crate::run::{Measured, RunSpec};
use crate::stats::{self, Fairness, Quantiles};
use loadgen::Phases;

/// One worker in one run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkerRow {
    pub model: String,
    pub workers: usize,
    pub worker: usize,
    pub pid: i32,
    /// Connections the worker took.
    pub accepted: u64,
    /// accepted / sum of accepted over the fleet.
    pub share: f64,
    pub spurious_wakeups: u64,
    /// CPU time, user + system, over the measured load.
    pub cpu_ms: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub wakeups: u64,
    pub empty_accepts: u64,
    /// Voluntary context switches of the worker over the measured load.
    pub voluntary_switches: u64,
    /// Connections the worker took but could not answer.
    pub worker_errors: u64,
    /// Connections the load generator attributed to this worker (x-worker of
    /// the connection's first response).
    pub attributed: u64,
    /// Requests the worker answered, and their share (differs from the
    /// connection share with keep-alive).
    pub requests: u64,
    pub request_share: f64,
    /// Responses the load generator attributed to this worker.
    pub attributed_requests: u64,
    pub connect_p50_us: u64,
    pub connect_p99_us: u64,
    pub connect_p999_us: u64,
    pub ttfb_p50_us: u64,
    pub ttfb_p99_us: u64,
    pub ttfb_p999_us: u64,
    pub total_p50_us: u64,
    pub total_p99_us: u64,
    pub total_p999_us: u64,
    pub uncorrected_p50_us: u64,
    pub uncorrected_p99_us: u64,
    pub uncorrected_p999_us: u64,
    /// Descriptors handed to this worker by the dispatcher (dispatch models).
    pub dispatched: Option<u64>,
    /// Socket inode the worker takes connections from, as /proc shows it.
    pub listen_inode: Option<u64>,
    /// Tag on the listener in the worker's own epoll set (epoll models).
    pub epoll_owner: Option<u64>,
    /// When the worker's injected stall began and ended, ms since the
    /// measured load began.
    pub stall_from_ms: Option<f64>,
    pub stall_to_ms: Option<f64>,
    /// accept-mutex: times the worker took the lock.
    pub lock_acquisitions: u64,
    /// How many times longer this worker's service time is (1 unless slowed).
    pub slowdown: f64,
    /// The process the worker runs in: its own pid in a process fleet (then
    /// equal to `pid`), the one fleet process in a thread fleet (where `pid`
    /// is the worker's thread id).
    pub process: i32,
    /// The id the worker's responses carry (`x-worker`, or the header or
    /// body `--attribute` names): its index in the harness's own fleets, its
    /// pid for Node.js and nginx, whatever a `--target` server sends.
    pub worker_id: String,
}

/// One run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SummaryRow {
    pub model: String,
    pub workers: usize,
    /// Connections in flight (closed loop only).
    pub concurrency: Option<usize>,
    /// Connections the load generator attempted.
    pub connections: u64,
    pub completed: u64,
    pub errors: u64,
    pub duration_s: f64,
    pub conn_per_s: f64,
    pub jain: Option<f64>,
    pub cov: Option<f64>,
    /// Fairness figures (loadgen::fairness): empty when no connection was
    /// attributed to a worker, where they are undefined.
    pub max_min_ratio: Option<f64>,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// `closed` or `open`.
    #[serde(rename = "loop")]
    pub load_loop: &'static str,
    pub rate: Option<f64>,
    pub arrivals: Option<&'static str>,
    pub seed: u64,
    pub max_inflight: Option<usize>,
    pub requests_per_conn: u32,
    pub warmup_s: f64,
    pub threads: usize,
    pub gap_us: u64,
    /// Requests completed, and per second.
    pub requests: u64,
    pub req_per_s: f64,
    /// Open loop: arrivals started late because of --max-inflight, and
    /// arrivals never started.
    pub late: u64,
    pub dropped: u64,
    pub accepted: u64,
    pub max_mean_ratio: Option<f64>,
    pub gini: Option<f64>,
    pub top1_share: Option<f64>,
    pub idle_workers: Option<usize>,
    /// The same figures over the workers' request counts.
    pub req_jain: Option<f64>,
    pub req_cov: Option<f64>,
    pub req_max_min_ratio: Option<f64>,
    pub req_gini: Option<f64>,
    pub connect_p50_us: u64,
    pub connect_p99_us: u64,
    pub connect_p999_us: u64,
    pub ttfb_p50_us: u64,
    pub ttfb_p99_us: u64,
    pub ttfb_p999_us: u64,
    pub total_p50_us: u64,
    pub total_p99_us: u64,
    pub total_p999_us: u64,
    pub uncorrected_p50_us: u64,
    pub uncorrected_p99_us: u64,
    pub uncorrected_p999_us: u64,
    pub spurious_wakeups: u64,
    pub empty_accepts: u64,
    /// Workers' voluntary context switches per completed connection: about
    /// 1-2 when one worker is woken per connection, about the fleet size
    /// under a thundering herd.
    pub switches_per_conn: f64,
    pub worker_cpu_ms: f64,
    pub dispatcher_cpu_ms: Option<f64>,
    /// Service time per request, e.g. `sleep:1000us`, and the slowed worker.
    pub service: String,
    pub slow_worker: Option<usize>,
    pub slow_factor: Option<f64>,
    /// The slowed worker's share of the connections (its fair share is 1/N).
    pub slow_share: Option<f64>,
    /// accept-mutex: times a worker took the lock while another was polling
    /// (0 when the lock excludes).
    pub poll_overlaps: u64,
    pub backlog: i32,
    /// `processes` or `threads`.
    pub fleet: &'static str,
    /// Connections a worker may have open at once (1: one at a time).
    pub worker_concurrency: usize,
    pub loadgen_cpu_ms: f64,
    pub err_refused: u64,
    pub err_reset: u64,
    pub err_timeout: u64,
    pub err_addr_not_available: u64,
    pub err_malformed: u64,
    pub err_other: u64,
    /// Still in flight when a signal cut the run short and the short grace
    /// after it ran out.
    pub err_cancelled: u64,
    /// Whether every completed connection was counted by exactly one worker.
    pub conserved: bool,
    /// False when a signal (SIGINT, SIGTERM) cut the load short: the figures
    /// cover only part of the run, and `sweep --resume` runs it again.
    pub complete: bool,
}

/// Rounds for the CSVs: enough digits to be exact at the scale measured.
pub fn round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

fn ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 3)
}

/// p50/p99/p999 of each phase.
struct PhaseQuantiles {
    connect: Quantiles,
    ttfb: Quantiles,
    total: Quantiles,
    uncorrected: Quantiles,
}

impl PhaseQuantiles {
    fn of(p: &Phases) -> PhaseQuantiles {
        PhaseQuantiles {
            connect: Quantiles::of(&p.connect),
            ttfb: Quantiles::of(&p.ttfb),
            total: Quantiles::of(&p.total),
            uncorrected: Quantiles::of(&p.total_uncorrected),
        }
    }

    fn empty() -> PhaseQuantiles {
        let q = Quantiles::default();
        PhaseQuantiles {
            connect: q,
            ttfb: q,
            total: q,
            uncorrected: q,
        }
    }
}

/// Builds the summary row (with `conserved` left true: the caller sets it
/// from the conservation check) and the worker rows.
pub fn build(spec: &RunSpec, m: &Measured) -> (SummaryRow, Vec<WorkerRow>) {
    let n = m.ids.len();
    let report = &m.report;
    let accepted: Vec<u64> = m.counts.iter().take(n).map(|c| c.accepted).collect();
    let requests: Vec<u64> = m.counts.iter().take(n).map(|c| c.requests).collect();
    let shares = stats::shares(&accepted);
    let request_shares = stats::shares(&requests);
    let has_dispatcher = spec.subject.model().is_some_and(|m| m.has_dispatcher());
    let workers: Vec<WorkerRow> = (0..n)
        .map(|i| {
            let c = &m.counts[i];
            let attributed = report.worker(&m.ids[i]);
            let q = attributed.map_or_else(PhaseQuantiles::empty, |w| PhaseQuantiles::of(&w.phases));
            let usage = m.usage[i];
            WorkerRow {
                model: spec.subject.name().into(),
                workers: n,
                worker: i,
                pid: m.pids[i],
                accepted: c.accepted,
                share: round(shares[i], 6),
                spurious_wakeups: c.spurious_wakeups,
                cpu_ms: ms(usage.cpu_ns),
                p50_us: q.total.p50,
                p99_us: q.total.p99,
                p999_us: q.total.p999,
                max_us: q.total.max,
                wakeups: c.wakeups,
                empty_accepts: c.empty_accepts,
                voluntary_switches: usage.voluntary_switches,
                worker_errors: c.errors,
                attributed: attributed.map_or(0, |w| w.completed),
                requests: c.requests,
                request_share: round(request_shares[i], 6),
                attributed_requests: attributed.map_or(0, |w| w.requests),
                connect_p50_us: q.connect.p50,
                connect_p99_us: q.connect.p99,
                connect_p999_us: q.connect.p999,
                ttfb_p50_us: q.ttfb.p50,
                ttfb_p99_us: q.ttfb.p99,
                ttfb_p999_us: q.ttfb.p999,
                total_p50_us: q.total.p50,
                total_p99_us: q.total.p99,
                total_p999_us: q.total.p999,
                uncorrected_p50_us: q.uncorrected.p50,
                uncorrected_p99_us: q.uncorrected.p99,
                uncorrected_p999_us: q.uncorrected.p999,
                dispatched: has_dispatcher.then_some(c.dispatched),
                listen_inode: m.endpoints[i].listen_inode,
                epoll_owner: m.endpoints[i].epoll_owner,
                stall_from_ms: m.stalls[i].map(|(f, _)| round(f.as_secs_f64() * 1000.0, 3)),
                stall_to_ms: m.stalls[i].map(|(_, t)| round(t.as_secs_f64() * 1000.0, 3)),
                lock_acquisitions: c.lock_acquisitions,
                slowdown: spec.slow.filter(|(w, _)| *w == i).map_or(1.0, |(_, f)| f),
                process: m.processes[i],
                worker_id: m.ids[i].clone(),
            }
        })
        .collect();

    let conn = Fairness::of(&accepted);
    let req = Fairness::of(&requests);
    let q = PhaseQuantiles::of(&report.phases);
    let e = &report.errors;
    let secs = report.elapsed.as_secs_f64();
    let (concurrency, rate, arrivals, max_inflight) = spec.load.columns();
    let switches: u64 = m.usage.iter().map(|u| u.voluntary_switches).sum();
    let summary = SummaryRow {
        model: spec.subject.name().into(),
        workers: n,
        concurrency,
        connections: report.started,
        completed: report.completed,
        errors: e.total(),
        duration_s: round(secs, 4),
        conn_per_s: round(report.conn_per_s(), 1),
        jain: conn.map(|f| round(f.jain, 6)),
        cov: conn.map(|f| round(f.cov, 6)),
        max_min_ratio: conn.map(|f| round(f.max_min, 4)),
        p50_us: q.total.p50,
        p99_us: q.total.p99,
        p999_us: q.total.p999,
        max_us: q.total.max,
        load_loop: if rate.is_some() { "open" } else { "closed" },
        rate,
        arrivals,
        seed: spec.seed,
        max_inflight,
        requests_per_conn: spec.requests_per_conn,
        warmup_s: spec.warmup.as_secs_f64(),
        threads: spec.threads,
        gap_us: spec.gap.as_micros() as u64,
        requests: report.requests,
        req_per_s: round(report.req_per_s(), 1),
        late: report.late,
        dropped: report.dropped,
        accepted: accepted.iter().sum(),
        max_mean_ratio: conn.map(|f| round(f.max_mean, 4)),
        gini: conn.map(|f| round(f.gini, 6)),
        top1_share: conn.map(|f| round(f.top1_share, 6)),
        idle_workers: conn.map(|f| f.idle_workers),
        req_jain: req.map(|f| round(f.jain, 6)),
        req_cov: req.map(|f| round(f.cov, 6)),
        req_max_min_ratio: req.map(|f| round(f.max_min, 4)),
        req_gini: req.map(|f| round(f.gini, 6)),
        connect_p50_us: q.connect.p50,
        connect_p99_us: q.connect.p99,
        connect_p999_us: q.connect.p999,
        ttfb_p50_us: q.ttfb.p50,
        ttfb_p99_us: q.ttfb.p99,
        ttfb_p999_us: q.ttfb.p999,
        total_p50_us: q.total.p50,
        total_p99_us: q.total.p99,
        total_p999_us: q.total.p999,
        uncorrected_p50_us: q.uncorrected.p50,
        uncorrected_p99_us: q.uncorrected.p99,
        uncorrected_p999_us: q.uncorrected.p999,
        spurious_wakeups: m.counts.iter().take(n).map(|c| c.spurious_wakeups).sum(),
        empty_accepts: m.counts.iter().take(n).map(|c| c.empty_accepts).sum(),
        switches_per_conn: round(switches as f64 / report.completed.max(1) as f64, 3),
        worker_cpu_ms: ms(m.usage.iter().map(|u| u.cpu_ns).sum()),
        dispatcher_cpu_ms: m.dispatcher_usage.map(|u| ms(u.cpu_ns)),
        service: spec.service.to_string(),
        slow_worker: spec.slow.map(|(w, _)| w),
        slow_factor: spec.slow.map(|(_, f)| f),
        slow_share: spec.slow.and_then(|(w, _)| shares.get(w)).map(|s| round(*s, 6)),
        poll_overlaps: m.poll_overlaps,
        backlog: spec.model_opts.backlog,
        fleet: spec.fleet.name(),
        worker_concurrency: spec.worker_concurrency,
        loadgen_cpu_ms: round(m.loadgen_cpu.as_secs_f64() * 1000.0, 3),
        err_refused: e.refused,
        err_reset: e.reset,
        err_timeout: e.timeout,
        err_addr_not_available: e.addr_not_available,
        err_malformed: e.malformed,
        err_other: e.other,
        err_cancelled: e.cancelled,
        conserved: true,
        complete: true,
    };
    (summary, workers)
}
