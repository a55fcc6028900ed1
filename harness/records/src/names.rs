//! The names of the files a run and a sweep write, in one place.

/// One row per worker ([`crate::rows::WorkerRow`]).
pub const WORKERS: &str = "workers.csv";
/// One row per run ([`crate::rows::SummaryRow`]).
pub const SUMMARY: &str = "summary.csv";
/// Per-worker counts per interval ([`crate::timeseries`]).
pub const TIMESERIES: &str = "timeseries.csv";
/// One corrected-latency histogram per interval ([`crate::hlog`]).
pub const LATENCY_HLOG: &str = "latency.hlog";
/// The whole run's histograms, tagged ([`crate::hlog`]).
pub const HISTOGRAMS_HLOG: &str = "histograms.hlog";
/// The machine, the command and the parameters ([`crate::meta`]).
pub const META: &str = "meta.json";
/// The kernel's TCP counters before and after the measured load
/// ([`crate::rows::KernelRow`]).
pub const KERNEL: &str = "kernel.csv";
/// Every listener's accept-queue depth over time ([`crate::rows::QueueRow`]).
pub const QUEUE: &str = "queue.csv";
/// Every connection's milestones, with `--connection-log`
/// ([`crate::rows::ConnectionRow`]).
pub const CONNECTIONS: &str = "connections.csv";
/// Workers killed, retired and started during a run.
pub const FAULTS: &str = "faults.csv";
/// `--attribute kernel`: who accepted, per the kernel, beside who served
/// ([`crate::rows::AcceptRow`]).
pub const ACCEPTS: &str = "accepts.csv";
/// A real server's own per-worker counts.
pub const SERVER_COUNTS: &str = "server-counts.csv";
/// A sweep: one row per run.
pub const RUNS: &str = "runs.csv";
/// A sweep: one row per grid point, with estimates over repetitions.
pub const AGGREGATE: &str = "aggregate.csv";
/// A sweep: its identity, order and capacities, for `--resume`.
pub const SWEEP: &str = "sweep.json";
/// A sweep: the scenario file it ran.
pub const SCENARIO: &str = "scenario.toml";
/// A sweep: one folder per run, `runs/<run_id>/`.
pub const RUNS_DIR: &str = "runs";
/// Charts, under a run or a sweep.
pub const CHARTS_DIR: &str = "charts";
/// The report of a run or a sweep.
pub const REPORT_MD: &str = "REPORT.md";
pub const REPORT_HTML: &str = "report.html";

/// The response header in which a worker stamps when it took the
/// connection (CLOCK_MONOTONIC, ns); with [`RESPONDED_HEADER`] the load
/// generator splits latency into the `queue` and `service` phases.
pub const ACCEPTED_HEADER: &str = "x-accepted-ns";
/// The response header in which a worker stamps when it began writing the
/// response (CLOCK_MONOTONIC, ns).
pub const RESPONDED_HEADER: &str = "x-responded-ns";
