//! The kernel's own count of who accepted each connection
//! (`--attribute kernel`).
//!
//! Why it exists: a server as it ships does not name its worker in its
//! responses, and in a dispatching server the worker that serves a
//! connection is not the one that accepted it. The kernel knows who
//! accepted: every accept(2) and accept4(2) that returns a connection passes
//! the syscalls:sys_exit_accept4 (or sys_exit_accept) tracepoint in the
//! thread that called it. A perf counter on each tracepoint, per thread of
//! the server, with the filter `ret >= 0` (a failed accept, EAGAIN, is not a
//! connection) and `inherit` set (the processes and threads it creates
//! afterwards count into it), counts them without the server's help.
//!
//! Counters are opened on every thread of the server's processes once the
//! subject is ready ([`Watch::open`]), read at the start of the measured
//! load ([`Watch::baseline`], after any warm-up) and at its end
//! ([`Watch::read`]), so they cover the measured load only. What they do
//! not see: accepts through io_uring (IORING_OP_ACCEPT runs in the kernel,
//! no system call per connection), and a process forked by a watched one is
//! counted into its parent's thread (the counter is inherited).
//!
//! The tracepoints are named by their ids: read in a mounted tracefs, or,
//! when none is mounted, in one mounted for a moment in a throw-away mount
//! namespace (root), so the host's mounts never change.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use anyhow::Context;

/// The tracepoints counted: a successful accept4(2) or accept(2).
pub const TRACEPOINTS: [(&str, &str); 2] = [("syscalls", "sys_exit_accept4"), ("syscalls", "sys_exit_accept")];

/// Only returns that are a connection.
pub const FILTER: &str = "ret >= 0";

/// What a worker is in the kernel's view (`--kernel-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelBy {
    /// A process: the counts of its threads summed.
    #[default]
    Process,
    /// A thread (a thread pool's accepting threads, HAProxy's, h2o's).
    Thread,
}

impl KernelBy {
    pub fn name(self) -> &'static str {
        match self {
            KernelBy::Process => "process",
            KernelBy::Thread => "thread",
        }
    }
}

impl std::str::FromStr for KernelBy {
    type Err = String;

    fn from_str(s: &str) -> Result<KernelBy, String> {
        match s {
            "process" => Ok(KernelBy::Process),
            "thread" => Ok(KernelBy::Thread),
            _ => Err(format!("'{s}' is not process or thread")),
        }
    }
}

/// One worker in the kernel's view: a process, or a thread of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub pid: i32,
    /// The thread, when workers are threads.
    pub tid: Option<i32>,
    /// Connections it accepted over the measured load.
    pub accepted: u64,
}

impl Accepted {
    /// Its id: the pid, or the thread id.
    pub fn id(&self) -> i32 {
        self.tid.unwrap_or(self.pid)
    }
}

/// The ids of [`TRACEPOINTS`], found once per process: in a mounted tracefs,
/// else in a private one (root).
pub fn tracepoint_ids() -> Result<[u64; 2], String> {
    static IDS: OnceLock<Result<[u64; 2], String>> = OnceLock::new();
    IDS.get_or_init(|| {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let ids = match sys::perf::tracefs_in(&mounts) {
            Some(at) => TRACEPOINTS
                .iter()
                .map(|(g, n)| sys::perf::tracepoint_id(std::path::Path::new(&at), g, n))
                .collect::<std::io::Result<Vec<u64>>>()
                .map_err(|e| format!("the accept tracepoints under the tracefs at {at}: {e}")),
            None if sys::geteuid() != 0 => Err(
                "no tracefs is mounted to read the accept tracepoints' ids from (mounting a private one needs root)"
                    .to_string(),
            ),
            None => sys::perf::tracepoint_ids_privately(&TRACEPOINTS).map_err(|e| e.to_string()),
        }?;
        Ok([ids[0], ids[1]])
    })
    .clone()
}

/// Opens the two filtered, inherited counters on thread `tid`.
fn counters(ids: [u64; 2], tid: i32) -> std::io::Result<Vec<OwnedFd>> {
    ids.iter()
        .map(|&id| {
            let event = sys::perf::Event {
                kind: sys::perf::PERF_TYPE_TRACEPOINT,
                config: id,
                user_only: false,
            };
            let c = sys::perf::task_counter(event, tid, true)?;
            sys::perf::set_filter(c.as_fd(), FILTER)?;
            Ok(c)
        })
        .collect()
}

/// Opens and filters the counters on this thread and closes them: whether
/// a run could count accepts here (the doctor's probe).
pub fn probe() -> Result<String, String> {
    let ids = tracepoint_ids()?;
    counters(ids, sys::gettid())
        .map_err(|e| format!("perf_event_open of a filtered accept4 tracepoint counter: {e}"))?;
    Ok(format!(
        "syscalls:sys_exit_accept4 id {}, sys_exit_accept id {}; a counter filtered `{FILTER}` opened on this thread",
        ids[0], ids[1]
    ))
}

/// One watched thread.
struct Thread {
    pid: i32,
    tid: i32,
    counters: Vec<OwnedFd>,
    base: u64,
}

impl Thread {
    fn count(&self) -> std::io::Result<u64> {
        let mut sum = 0;
        for c in &self.counters {
            sum += sys::perf::read_count(c.as_fd())?;
        }
        Ok(sum)
    }
}

/// Counters on every thread of a server's processes.
pub struct Watch {
    threads: Vec<Thread>,
    by: KernelBy,
}

/// The threads of process `pid`, from /proc.
fn threads_of(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// The process (thread group) that `id` belongs to: `id` itself for a
/// process, its process for a thread (a server whose workers are threads
/// names them by thread id); `id` if /proc does not say.
fn process_of(id: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{id}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(id)
}

impl Watch {
    /// Opens counters on every thread of each process among `pids` (a
    /// thread id stands for its process, and each process is watched
    /// once; a thread that ended meanwhile is skipped; a process that has
    /// none is an error).
    pub fn open(pids: &[i32], by: KernelBy) -> anyhow::Result<Watch> {
        let ids = tracepoint_ids().map_err(|e| anyhow::anyhow!("--attribute kernel: {e}"))?;
        let mut threads = Vec::new();
        let mut processes: Vec<i32> = pids.iter().map(|&p| process_of(p)).collect();
        processes.sort_unstable();
        processes.dedup();
        for pid in processes {
            let tids = threads_of(pid);
            let before = threads.len();
            for tid in tids {
                match counters(ids, tid) {
                    Ok(counters) => threads.push(Thread {
                        pid,
                        tid,
                        counters,
                        base: 0,
                    }),
                    // Ended between the listing and the counter.
                    Err(e) if sys::errno_of(&e) == Some(libc::ESRCH) => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("--attribute kernel: a counter on thread {tid} of process {pid}"))
                    }
                }
            }
            if threads.len() == before {
                return Err(anyhow::anyhow!(crate::UsageError(format!(
                    "--attribute kernel: no process {pid} to count on (is it running?)"
                ))));
            }
        }
        Ok(Watch { threads, by })
    }

    /// Takes the counts from here on (the start of the measured load).
    pub fn baseline(&mut self) -> anyhow::Result<()> {
        for t in &mut self.threads {
            t.base = t.count().context("reading a kernel accept counter")?;
        }
        Ok(())
    }

    /// Every watched worker's accepts since the baseline, in id order.
    pub fn read(&self) -> anyhow::Result<Vec<Accepted>> {
        let mut per_thread = Vec::new();
        for t in &self.threads {
            let n = t.count().context("reading a kernel accept counter")?;
            per_thread.push((t.pid, t.tid, n.saturating_sub(t.base)));
        }
        Ok(by_worker(&per_thread, self.by))
    }
}

/// Folds per-thread counts `(pid, tid, accepted)` into workers: one per
/// process (its threads summed) or one per thread.
pub fn by_worker(threads: &[(i32, i32, u64)], by: KernelBy) -> Vec<Accepted> {
    let mut all: BTreeMap<(i32, Option<i32>), u64> = BTreeMap::new();
    for &(pid, tid, n) in threads {
        let key = match by {
            KernelBy::Process => (pid, None),
            KernelBy::Thread => (pid, Some(tid)),
        };
        *all.entry(key).or_default() += n;
    }
    all.into_iter()
        .map(|((pid, tid), accepted)| Accepted { pid, tid, accepted })
        .collect()
}

/// The kernel's distribution: the subject's own workers (by id, in their
/// order, 0 where they accepted nothing), then every other watched process
/// or thread that accepted anything (a dispatcher, Node's cluster master).
/// One that holds the socket and never accepts (nginx's master) is no
/// worker.
pub fn distribution(all: &[Accepted], workers: &[i32]) -> Vec<Accepted> {
    let mut out: Vec<Accepted> = workers
        .iter()
        .map(|&w| {
            all.iter().find(|a| a.id() == w).cloned().unwrap_or(Accepted {
                pid: w,
                tid: None,
                accepted: 0,
            })
        })
        .collect();
    out.extend(
        all.iter()
            .filter(|a| a.accepted > 0 && !workers.contains(&a.id()))
            .cloned(),
    );
    out
}

/// Every process that holds a socket listening on `port` (in this
/// network namespace), in pid order.
pub fn holders(port: u16) -> Vec<i32> {
    let listeners = fleet::introspect::listening_inodes(port);
    if listeners.is_empty() {
        return Vec::new();
    }
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    pids.retain(|&p| p != sys::getpid() && !fleet::introspect::held_listeners(p, &listeners).is_empty());
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_fold_into_processes_or_stay_threads() {
        let t = [(10, 10, 3), (10, 11, 4), (20, 20, 0), (20, 21, 5)];
        let p = by_worker(&t, KernelBy::Process);
        assert_eq!(
            p.iter().map(|a| (a.id(), a.accepted)).collect::<Vec<_>>(),
            [(10, 7), (20, 5)]
        );
        let th = by_worker(&t, KernelBy::Thread);
        assert_eq!(
            th.iter().map(|a| (a.pid, a.id(), a.accepted)).collect::<Vec<_>>(),
            [(10, 10, 3), (10, 11, 4), (20, 20, 0), (20, 21, 5)]
        );
    }

    #[test]
    fn the_distribution_is_the_workers_and_whoever_else_accepted() {
        let a = |pid, accepted| Accepted {
            pid,
            tid: None,
            accepted,
        };
        // A master (1) that accepted everything, workers 2 and 3 nothing, an
        // idle holder (4) that is no worker.
        let all = [a(1, 9), a(2, 0), a(3, 0), a(4, 0)];
        let d = distribution(&all, &[3, 2, 5]);
        assert_eq!(
            d.iter().map(|a| (a.pid, a.accepted)).collect::<Vec<_>>(),
            [(3, 0), (2, 0), (5, 0), (1, 9)]
        );
    }

    #[test]
    fn kernel_by_parses_its_two_names() {
        assert_eq!("thread".parse::<KernelBy>(), Ok(KernelBy::Thread));
        assert_eq!("process".parse::<KernelBy>().map(KernelBy::name), Ok("process"));
        assert!("threads".parse::<KernelBy>().unwrap_err().contains("'threads'"));
    }
}
