//! The rows of a run: one per worker (`workers.csv`), one per run
//! (`summary.csv`).
//!
//! These types are the schema of both files (field order is column order),
//! written by the runner and read back by the reports: Serialize and
//! Deserialize by column name, so a reader of an older file with fewer
//! columns fails by name, not by position. summary.csv also holds a column
//! for every run parameter that records one (the parameter table of the
//! runner decides which), between `workers` and the measured figures; see
//! [`crate::csv::summary`]. Latency
//! columns are microseconds from the load generator's HdrHistograms:
//! `p50_us`..`max_us` are the corrected total (from each connection's
//! intended start; the same as the uncorrected one in a closed loop), then
//! each phase has its own `<phase>_p50_us`, `_p99_us`, `_p999_us`.

use serde::{Deserialize, Serialize};

/// One worker in one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
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
    /// Connections the kernel saw it accept (`--attribute kernel`: accept
    /// and accept4 returns counted on its threads); empty without it, and
    /// for io_uring accepts, which make no system call.
    #[serde(default)]
    pub kernel_accepted: Option<u64>,
    /// Requests the worker answered, and their share (differs from the
    /// connection share with keep-alive).
    pub requests: u64,
    pub request_share: f64,
    /// Responses the load generator attributed to this worker.
    pub attributed_requests: u64,
    pub connect_p50_us: u64,
    pub connect_p99_us: u64,
    pub connect_p999_us: u64,
    /// Time from the connection's handshake to the worker taking it, from
    /// the workers' `x-accepted-ns` stamps (empty: nothing stamped).
    pub queue_p50_us: Option<u64>,
    pub queue_p99_us: Option<u64>,
    pub queue_p999_us: Option<u64>,
    /// Time from the worker taking the connection to its first response
    /// (`x-responded-ns`).
    pub service_p50_us: Option<u64>,
    pub service_p99_us: Option<u64>,
    pub service_p999_us: Option<u64>,
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
    /// The accept queue of the listener it takes connections from, sampled
    /// through sock_diag every `--queue-interval` over the measured load:
    /// the deepest and the mean depth, and the time it was at (or above)
    /// its limit. Empty when nothing was sampled (a dispatcher's workers
    /// have no listener of their own).
    pub queue_max: Option<u32>,
    pub queue_mean: Option<f64>,
    pub queue_full_ms: Option<f64>,
}

/// One run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SummaryRow {
    pub model: String,
    pub workers: usize,
    /// Connections the load generator attempted.
    pub connections: u64,
    pub completed: u64,
    pub errors: u64,
    pub duration_s: f64,
    pub conn_per_s: f64,
    /// Fairness figures ([`crate::fairness`]): empty when no connection was
    /// attributed to a worker, where they are undefined.
    pub jain: Option<f64>,
    pub cov: Option<f64>,
    pub max_min_ratio: Option<f64>,
    /// Deprecated: always equal to `total_p50_us`, `total_p99_us`,
    /// `total_p999_us` (the corrected total latency), kept for readers of
    /// the first files.
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
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
    /// `--attribute kernel`: the connections the kernel saw accepted, and
    /// the fairness of who accepted them (the workers, and whoever else
    /// accepted: a dispatcher, Node's cluster master); empty without it.
    #[serde(default)]
    pub kernel_accepted: Option<u64>,
    #[serde(default)]
    pub kernel_jain: Option<f64>,
    #[serde(default)]
    pub kernel_max_min_ratio: Option<f64>,
    pub connect_p50_us: u64,
    pub connect_p99_us: u64,
    pub connect_p999_us: u64,
    /// Time from the connection's handshake to the worker taking it, from
    /// the workers' `x-accepted-ns` stamps (empty: nothing stamped).
    pub queue_p50_us: Option<u64>,
    pub queue_p99_us: Option<u64>,
    pub queue_p999_us: Option<u64>,
    /// Time from the worker taking the connection to its first response
    /// (`x-responded-ns`).
    pub service_p50_us: Option<u64>,
    pub service_p99_us: Option<u64>,
    pub service_p999_us: Option<u64>,
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
    /// The slowed worker's share of the connections (its fair share is 1/N).
    pub slow_share: Option<f64>,
    /// accept-mutex: times a worker took the lock while another was polling
    /// (0 when the lock excludes).
    pub poll_overlaps: u64,
    pub loadgen_cpu_ms: f64,
    /// The kernel's own account over the measured load: the change of
    /// these TCP counters (kernel.csv has every counter). In the run's own
    /// network namespace they are the run's alone; in the host namespace
    /// (`--netns host`, no root, a `--target`) they are machine-wide.
    pub kernel_listen_overflows: Option<i64>,
    pub kernel_listen_drops: Option<i64>,
    pub kernel_syn_cookies_sent: Option<i64>,
    pub kernel_reqq_full_drops: Option<i64>,
    pub kernel_syn_retrans: Option<i64>,
    pub kernel_timeouts: Option<i64>,
    pub kernel_migrate_req_success: Option<i64>,
    pub kernel_migrate_req_failure: Option<i64>,
    pub kernel_passive_opens: Option<i64>,
    pub kernel_active_opens: Option<i64>,
    pub kernel_attempt_fails: Option<i64>,
    pub kernel_estab_resets: Option<i64>,
    /// The accept queues (every listener of the run) over the measured
    /// load: the deepest any got, the mean of their summed depth, and the
    /// longest time one was at its limit.
    pub queue_max: Option<u32>,
    pub queue_mean: Option<f64>,
    pub queue_full_ms: Option<f64>,
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

/// One row of `faults.csv`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultRow {
    /// Since the measured load began.
    pub t_ms: f64,
    pub worker: usize,
    pub pid: i32,
    /// `killed`, `started` (a replacement) or `retired`.
    pub event: String,
    /// For `started`: the worker it replaces.
    pub replaces: Option<usize>,
}

/// One row of `kernel.csv`: a kernel counter (`TcpExt.ListenOverflows`,
/// `Tcp.PassiveOpens`, ...) before and after the measured load.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KernelRow {
    pub counter: String,
    pub before: i64,
    pub after: i64,
    pub delta: i64,
}

/// One row of `connections.csv` (`--connection-log`): one connection's
/// first response. Times are microseconds since the run's epoch (when the
/// measured load began: the origin of `stall_from_ms` in workers.csv),
/// all read from CLOCK_MONOTONIC; `accepted_us` and `responded_us` are the
/// worker's own stamps (empty when the server sent none).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnectionRow {
    /// The worker the response named (as in workers.csv's `worker_id`).
    pub worker: String,
    /// connect() called.
    pub start_us: f64,
    /// Established, as the load generator saw it.
    pub established_us: f64,
    /// The worker took it (`x-accepted-ns`).
    pub accepted_us: Option<f64>,
    /// The worker began the response (`x-responded-ns`).
    pub responded_us: Option<f64>,
    /// The response was complete.
    pub done_us: f64,
    /// `accepted_us - established_us`, at least 0.
    pub queue_us: Option<f64>,
    /// `responded_us - accepted_us`.
    pub service_us: Option<f64>,
}

/// One row of `accepts.csv` (`--attribute kernel`): one process or thread
/// the kernel saw accept, or a worker, with both views of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcceptRow {
    /// Its index in workers.csv; empty for one that is no worker (a
    /// dispatcher, a cluster master).
    pub worker: Option<usize>,
    pub pid: i32,
    /// The thread, with `--kernel-by thread`.
    pub tid: Option<i32>,
    /// Who accepted: the connections the kernel saw it accept.
    pub kernel_accepted: u64,
    /// Who served: the connections whose first response named it (empty
    /// for one that is no worker).
    pub served: Option<u64>,
}

/// One row of `queue.csv`: one listening socket's accept queue at one
/// sample.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueRow {
    /// Since the measured load began.
    pub t_ms: f64,
    /// The worker that takes connections from it; empty for a listener
    /// several workers share (or one no worker was seen to hold).
    pub worker: Option<usize>,
    pub listener_inode: u64,
    /// Connections in its accept queue, and the queue's limit.
    pub depth: u32,
    pub limit: u32,
}
