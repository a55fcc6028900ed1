//! The records a run produces: one row per worker, one summary row per run.
//!
//! These types are the schema of `workers.csv` and `summary.csv` (field order
//! is column order), shared by every exporter and by `reproduce`.

use serde::Serialize;

/// One worker in one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
    /// CPU time, user + system, from wait4 at teardown.
    pub cpu_ms: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub wakeups: u64,
    pub empty_accepts: u64,
    /// Voluntary context switches of the worker over the run (wait4).
    pub voluntary_switches: u64,
    /// Connections the worker took but could not answer.
    pub worker_errors: u64,
    /// Responses the load generator attributed to this worker (x-worker).
    pub attributed: u64,
    /// Descriptors handed to this worker by the dispatcher (dispatch models).
    pub dispatched: Option<u64>,
    /// Socket inode the worker takes connections from, as /proc shows it.
    pub listen_inode: Option<u64>,
    /// Tag on the listener in the worker's own epoll set (epoll models).
    pub epoll_owner: Option<u64>,
}

/// One run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SummaryRow {
    pub model: String,
    pub workers: usize,
    pub concurrency: usize,
    /// Connections the load generator attempted.
    pub connections: u64,
    pub completed: u64,
    pub errors: u64,
    pub duration_s: f64,
    pub conn_per_s: f64,
    pub jain: f64,
    pub cov: f64,
    pub max_min_ratio: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub threads: usize,
    pub gap_us: u64,
    pub accepted: u64,
    pub spurious_wakeups: u64,
    pub empty_accepts: u64,
    /// Workers' voluntary context switches per completed connection: about
    /// 1-2 when one worker is woken per connection, about the fleet size
    /// under a thundering herd.
    pub switches_per_conn: f64,
    pub worker_cpu_ms: f64,
    pub dispatcher_cpu_ms: Option<f64>,
    pub loadgen_cpu_ms: f64,
    pub err_refused: u64,
    pub err_reset: u64,
    pub err_timeout: u64,
    pub err_addr_not_available: u64,
    pub err_malformed: u64,
    pub err_other: u64,
    /// Whether every completed connection was counted by exactly one worker.
    pub conserved: bool,
}

/// Rounds for the CSVs: enough digits to be exact at the scale measured.
pub fn round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let k = 10f64.powi(digits);
    (x * k).round() / k
}
