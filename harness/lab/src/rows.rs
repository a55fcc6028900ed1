//! How a run's rows (one per worker, one summary; their types are the
//! on-disk contract in `records::rows`) are built from what was measured.
//! Latency
//! columns are microseconds from the load generator's HdrHistograms:
//! `p50_us`..`max_us` are the corrected total (from each connection's
//! intended start; the same as the uncorrected one in a closed loop), then
//! each phase has its own `<phase>_p50_us`, `_p99_us`, `_p999_us` (`queue`
//! and `service` empty when the server stamped nothing).

use crate::accepts::{self, Accepted, KernelBy};
use crate::account::{CountSource, Measured};
use crate::spec::RunSpec;

use loadgen::Phases;
use records::rows::AcceptRow;
use records::stats::{self, Fairness, Quantiles};
use records::{round, SummaryRow, WorkerRow};

fn ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 3)
}

/// p50/p99/p999 of each phase.
struct PhaseQuantiles {
    connect: Quantiles,
    /// None when nothing was stamped.
    queue: Option<Quantiles>,
    service: Option<Quantiles>,
    ttfb: Quantiles,
    total: Quantiles,
    uncorrected: Quantiles,
}

impl PhaseQuantiles {
    fn of(p: &Phases) -> PhaseQuantiles {
        PhaseQuantiles {
            connect: Quantiles::of(&p.connect),
            queue: (!p.queue.is_empty()).then(|| Quantiles::of(&p.queue)),
            service: (!p.service.is_empty()).then(|| Quantiles::of(&p.service)),
            ttfb: Quantiles::of(&p.ttfb),
            total: Quantiles::of(&p.total),
            uncorrected: Quantiles::of(&p.total_uncorrected),
        }
    }

    fn empty() -> PhaseQuantiles {
        let q = Quantiles::default();
        PhaseQuantiles {
            connect: q,
            queue: None,
            service: None,
            ttfb: q,
            total: q,
            uncorrected: q,
        }
    }
}

/// Builds the summary row (with `conserved` left true: the caller sets it
/// from the conservation check) and the worker rows.
pub fn build(spec: &RunSpec, m: &Measured) -> (SummaryRow, Vec<WorkerRow>) {
    let n = m.account.ids.len();
    let report = &m.report;
    let accepted: Vec<u64> = m.account.counts.iter().take(n).map(|c| c.accepted).collect();
    let requests: Vec<u64> = m.account.counts.iter().take(n).map(|c| c.requests).collect();
    let shares = stats::shares(&accepted);
    let request_shares = stats::shares(&requests);
    let has_dispatcher = spec.subject.model().is_some_and(|m| m.has_dispatcher());
    // The accept queue of the listener worker `i` takes connections from.
    let listener = |i: usize| {
        let inode = m.account.endpoints.get(i)?.listen_inode?;
        m.queues.as_ref()?.listeners.get(&inode)
    };
    let kernel = |counter: &str| m.kernel.as_ref().and_then(|k| k.get(counter));
    let workers: Vec<WorkerRow> = (0..n)
        .map(|i| {
            let c = &m.account.counts[i];
            let attributed = report.worker(&m.account.ids[i]);
            let q = attributed.map_or_else(PhaseQuantiles::empty, |w| PhaseQuantiles::of(&w.phases));
            let usage = m.account.usage[i];
            WorkerRow {
                model: spec.subject.name().into(),
                workers: n,
                worker: i,
                pid: m.account.pids[i],
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
                kernel_accepted: kernel_of(spec, m, i),
                requests: c.requests,
                request_share: round(request_shares[i], 6),
                attributed_requests: attributed.map_or(0, |w| w.requests),
                connect_p50_us: q.connect.p50,
                connect_p99_us: q.connect.p99,
                connect_p999_us: q.connect.p999,
                queue_p50_us: q.queue.map(|q| q.p50),
                queue_p99_us: q.queue.map(|q| q.p99),
                queue_p999_us: q.queue.map(|q| q.p999),
                service_p50_us: q.service.map(|q| q.p50),
                service_p99_us: q.service.map(|q| q.p99),
                service_p999_us: q.service.map(|q| q.p999),
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
                listen_inode: m.account.endpoints[i].listen_inode,
                epoll_owner: m.account.endpoints[i].epoll_owner,
                stall_from_ms: m.account.stalls[i].map(|(f, _)| round(f.as_secs_f64() * 1000.0, 3)),
                stall_to_ms: m.account.stalls[i].map(|(_, t)| round(t.as_secs_f64() * 1000.0, 3)),
                lock_acquisitions: c.lock_acquisitions,
                slowdown: spec.slow.filter(|(w, _)| *w == i).map_or(1.0, |(_, f)| f),
                process: m.account.processes[i],
                worker_id: m.account.ids[i].clone(),
                queue_max: listener(i).map(|l| l.max),
                queue_mean: listener(i).map(|l| round(l.mean(), 3)),
                queue_full_ms: listener(i).and_then(|l| m.queues.as_ref().map(|q| q.full_ms(l))),
            }
        })
        .collect();

    let conn = Fairness::of(&accepted);
    let req = Fairness::of(&requests);
    let who_accepted = kernel_distribution(spec, m);
    let kernel_counts: Option<Vec<u64>> = who_accepted
        .as_ref()
        .map(|d| d.iter().map(|(_, a)| a.accepted).collect());
    let kernel_fair = kernel_counts.as_deref().and_then(Fairness::of);
    let q = PhaseQuantiles::of(&report.phases);
    let e = &report.errors;
    let secs = report.elapsed.as_secs_f64();
    let switches: u64 = m.account.usage.iter().map(|u| u.voluntary_switches).sum();
    let summary = SummaryRow {
        model: spec.subject.name().into(),
        workers: n,
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
        kernel_accepted: kernel_counts.as_ref().map(|c| c.iter().sum()),
        kernel_jain: kernel_fair.map(|f| round(f.jain, 6)),
        kernel_max_min_ratio: kernel_fair.map(|f| round(f.max_min, 4)),
        connect_p50_us: q.connect.p50,
        connect_p99_us: q.connect.p99,
        connect_p999_us: q.connect.p999,
        queue_p50_us: q.queue.map(|q| q.p50),
        queue_p99_us: q.queue.map(|q| q.p99),
        queue_p999_us: q.queue.map(|q| q.p999),
        service_p50_us: q.service.map(|q| q.p50),
        service_p99_us: q.service.map(|q| q.p99),
        service_p999_us: q.service.map(|q| q.p999),
        ttfb_p50_us: q.ttfb.p50,
        ttfb_p99_us: q.ttfb.p99,
        ttfb_p999_us: q.ttfb.p999,
        total_p50_us: q.total.p50,
        total_p99_us: q.total.p99,
        total_p999_us: q.total.p999,
        uncorrected_p50_us: q.uncorrected.p50,
        uncorrected_p99_us: q.uncorrected.p99,
        uncorrected_p999_us: q.uncorrected.p999,
        spurious_wakeups: m.account.counts.iter().take(n).map(|c| c.spurious_wakeups).sum(),
        empty_accepts: m.account.counts.iter().take(n).map(|c| c.empty_accepts).sum(),
        switches_per_conn: round(switches as f64 / report.completed.max(1) as f64, 3),
        worker_cpu_ms: ms(m.account.usage.iter().map(|u| u.cpu_ns).sum()),
        dispatcher_cpu_ms: m.account.dispatcher_usage.map(|u| ms(u.cpu_ns)),
        slow_share: spec.slow.and_then(|(w, _)| shares.get(w)).map(|s| round(*s, 6)),
        poll_overlaps: m.account.poll_overlaps,
        loadgen_cpu_ms: round(m.loadgen_cpu.as_secs_f64() * 1000.0, 3),
        err_refused: e.refused,
        err_reset: e.reset,
        err_timeout: e.timeout,
        err_addr_not_available: e.addr_not_available,
        err_malformed: e.malformed,
        err_other: e.other,
        err_cancelled: e.cancelled,
        kernel_listen_overflows: kernel("TcpExt.ListenOverflows"),
        kernel_listen_drops: kernel("TcpExt.ListenDrops"),
        kernel_syn_cookies_sent: kernel("TcpExt.SyncookiesSent"),
        kernel_reqq_full_drops: kernel("TcpExt.TCPReqQFullDrop"),
        kernel_syn_retrans: kernel("TcpExt.TCPSynRetrans"),
        kernel_timeouts: kernel("TcpExt.TCPTimeouts"),
        kernel_migrate_req_success: kernel("TcpExt.TCPMigrateReqSuccess"),
        kernel_migrate_req_failure: kernel("TcpExt.TCPMigrateReqFailure"),
        kernel_passive_opens: kernel("Tcp.PassiveOpens"),
        kernel_active_opens: kernel("Tcp.ActiveOpens"),
        kernel_attempt_fails: kernel("Tcp.AttemptFails"),
        kernel_estab_resets: kernel("Tcp.EstabResets"),
        queue_max: m
            .queues
            .as_ref()
            .and_then(|q| q.listeners.values().map(|l| l.max).max()),
        queue_mean: m
            .queues
            .as_ref()
            .filter(|q| !q.listeners.is_empty())
            .map(|q| round(q.total_mean, 3)),
        queue_full_ms: m
            .queues
            .as_ref()
            .and_then(|q| q.listeners.values().map(|l| q.full_ms(l)).reduce(f64::max)),
        conserved: true,
        complete: true,
    };
    (summary, workers)
}

/// Whether the kernel's count covers worker `i`: not where it accepts
/// through io_uring (no system call), nor a thread worker counted by
/// process.
fn kernel_covers(spec: &RunSpec, m: &Measured, i: usize) -> bool {
    let uring = spec.subject.model() == Some(fleet::model::Model::IoUring);
    let thread_by_process = spec.kernel_by == KernelBy::Process && m.account.processes.get(i) != m.account.pids.get(i);
    m.account.kernel.is_some() && !uring && !thread_by_process
}

/// Worker `i`'s accepts as the kernel counted them (`--attribute kernel`).
fn kernel_of(spec: &RunSpec, m: &Measured, i: usize) -> Option<u64> {
    if !kernel_covers(spec, m, i) {
        return None;
    }
    let all = m.account.kernel.as_ref()?;
    let id = m.account.pids[i];
    Some(all.iter().find(|a| a.id() == id).map_or(0, |a| a.accepted))
}

/// Who accepted, per the kernel: the workers it covers (with their index)
/// and whoever else accepted (a dispatcher, a cluster master; no index).
/// `None` without `--attribute kernel`, or where it covers no worker.
pub fn kernel_distribution(spec: &RunSpec, m: &Measured) -> Option<Vec<(Option<usize>, Accepted)>> {
    let all = m.account.kernel.as_ref()?;
    let covered: Vec<usize> = (0..m.account.ids.len())
        .filter(|&i| kernel_covers(spec, m, i))
        .collect();
    if covered.is_empty() {
        return None;
    }
    let pids: Vec<i32> = covered.iter().map(|&i| m.account.pids[i]).collect();
    let d = accepts::distribution(all, &pids);
    Some(
        d.into_iter()
            .enumerate()
            .map(|(k, a)| (covered.get(k).copied(), a))
            .collect(),
    )
}

/// The rows of `accepts.csv`: who accepted beside who served.
pub fn accept_rows(spec: &RunSpec, m: &Measured, workers: &[WorkerRow]) -> Option<Vec<AcceptRow>> {
    let d = kernel_distribution(spec, m)?;
    Some(
        d.into_iter()
            .map(|(w, a)| AcceptRow {
                worker: w,
                pid: a.pid,
                tid: a.tid,
                kernel_accepted: a.accepted,
                // A target's responses name nobody under kernel attribution.
                served: w
                    .filter(|_| m.account.source != CountSource::Kernel)
                    .and_then(|w| workers.get(w))
                    .map(|r| r.attributed),
            })
            .collect(),
    )
}
