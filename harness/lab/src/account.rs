//! What a run measured and what it produced: the subject's account of its
//! workers, the load generator's report beside it, and the result of the
//! run (rows, conservation problems, whether a signal cut it short).

use std::time::Duration;

use fleet::counters::Snapshot;
use fleet::introspect::{Endpoint, Usage};
use loadgen::Report;
use records::{SummaryRow, WorkerRow};

/// Who counted the connections that the load generator's attribution is
/// checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CountSource {
    /// The harness's workers, in shared memory.
    #[default]
    Workers,
    /// A real server's own count (Node's workers, nginx's access log).
    Server,
    /// Nobody but the load generator: a `--target` server's own counts are
    /// unknown, so only the attribution itself can be checked.
    Attribution,
    /// The kernel's count of who accepted (`--attribute kernel` on a
    /// `--target` whose responses name nobody).
    Kernel,
}

/// What a subject counted of its workers over the measured load (between
/// the end of the warm-up and the end of the load).
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// Each worker's id as its responses name it (`x-worker`): the index for
    /// the harness's fleets, the pid for real servers.
    pub ids: Vec<String>,
    /// Counters gained over the measured load, per worker.
    pub counts: Vec<Snapshot>,
    pub usage: Vec<Usage>,
    pub dispatcher_usage: Option<Usage>,
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
    /// The signal that cut the subject's own stop short (a real server's
    /// counts are then lost); `None` normally.
    pub interrupted: Option<i32>,
    /// `--attribute kernel`: every watched process (or thread) and what it
    /// accepted over the measured load; `None` without it.
    pub kernel: Option<Vec<crate::accepts::Accepted>>,
    /// The workers pass connections among themselves after accepting them
    /// (HAProxy's multi-queue listener): who accepted and whose own count
    /// a connection is in may differ, so only the totals must agree.
    pub redistributes: bool,
}

impl Account {
    /// The account of workers known by the ids their responses carry: the
    /// pid where the id is one (a real server's), nothing else known yet.
    pub fn attributed(ids: Vec<String>, counts: Vec<Snapshot>, source: CountSource) -> Account {
        let pids: Vec<i32> = ids.iter().map(|id| id.parse().unwrap_or(0)).collect();
        let n = ids.len();
        Account {
            ids,
            counts,
            usage: vec![Usage::default(); n],
            processes: pids.clone(),
            endpoints: vec![Endpoint::default(); n],
            stalls: vec![None; n],
            pids,
            inflight: 1,
            source,
            ..Account::default()
        }
    }
}

/// What was measured between the end of the warm-up and the end of the
/// load: the load generator's report beside the subject's account.
pub struct Measured {
    pub report: Report,
    /// CPU time of the harness process (the load generator) over the load.
    pub loadgen_cpu: Duration,
    pub account: Account,
    /// The kernel's counters over the measured load (`None` if the load
    /// never began).
    pub kernel: Option<crate::kernel::Delta>,
    /// The accept queues over the measured load.
    pub queues: Option<crate::queue::Queues>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub summary: SummaryRow,
    /// The run's parameter columns of summary.csv (the parameter table's).
    pub params: Vec<(&'static str, String)>,
    pub workers: Vec<WorkerRow>,
    /// Conservation failures, each with its figures; empty when it holds.
    pub problems: Vec<String>,
    /// Whose counts the attribution was checked against.
    pub source: CountSource,
    /// The signal (SIGINT, SIGTERM) that cut the load short; `None` for a
    /// complete run. See `interrupt.rs`.
    pub interrupted: Option<i32>,
    /// Where the run's network stack was (meta.json's `netns`).
    pub netns: String,
    /// The sysctls in force in the run's namespace (meta.json's `sysctls`).
    pub sysctls: std::collections::BTreeMap<String, Option<String>>,
    /// What the kernel dropped, in one line, when it dropped anything.
    pub kernel_warning: Option<String>,
}

impl RunResult {
    /// The parameter column `name`, if it has a value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Conservation held and the run was not cut short.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.interrupted.is_none()
    }
}
