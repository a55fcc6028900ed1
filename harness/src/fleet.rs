//! Forks, supervises and tears down a fleet of worker processes.
//!
//! Every child is forked while the harness has a single thread (checked), asks
//! the kernel to SIGKILL it when the harness dies (PR_SET_PDEATHSIG, then a
//! getppid check for the race), and runs with default signal actions so that
//! SIGTERM stops it even inside a blocking accept(2). Teardown sends SIGTERM,
//! waits a grace period, escalates to SIGKILL, and reaps every child with
//! wait4, which also gives its CPU time. Dropping a fleet that was not stopped
//! kills and reaps it, so no error path leaves a process behind.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::model::{dispatch_rr, Listeners, Model};
use crate::sys::{self, Fork, Reaped};
use crate::worker::{WorkerCtx, WorkerPlan};

/// How long workers get to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

pub struct Fleet {
    pub model: Model,
    /// Worker pids, by worker index.
    pub pids: Vec<libc::pid_t>,
    /// The dispatcher's pid, for models that have one.
    pub dispatcher: Option<libc::pid_t>,
    pub counters: Counters,
    /// Children already reaped (pid, how they ended).
    reaped: Vec<(libc::pid_t, Reaped)>,
    /// Children found dead while the load ran, described.
    exits: Vec<String>,
}

/// CPU time and exit of every child, after `stop`.
pub struct Teardown {
    pub worker_cpu: Vec<Duration>,
    /// Voluntary context switches per worker: every wakeup, wasted or not,
    /// costs one, so the herd shows here even when the kernel hides it from
    /// accept (a level-triggered epoll_wait that finds the socket drained
    /// goes back to sleep without returning).
    pub worker_switches: Vec<u64>,
    pub dispatcher_cpu: Option<Duration>,
    /// Children that had exited before they were asked to (index or "dispatcher", status).
    pub early_exits: Vec<String>,
}

impl Fleet {
    /// Forks `workers` workers (and a dispatcher when the model has one) over
    /// what `prepare` set up; the master keeps none of the listening sockets.
    /// `plan`: service time, slow and stalled workers, pinning.
    pub fn start(model: Model, listeners: Listeners, workers: usize, plan: &WorkerPlan) -> io::Result<Fleet> {
        let extra = usize::from(model.has_dispatcher());
        let mut fleet = Fleet {
            model,
            pids: Vec::with_capacity(workers),
            dispatcher: None,
            counters: Counters::new(workers + extra)?,
            reaped: Vec::new(),
            exits: Vec::new(),
        };
        let master = sys::getpid();
        for i in 0..workers {
            match sys::fork()? {
                Fork::Child => child(master, &format!("worker {i}"), || {
                    let end = listeners.into_worker(i);
                    if plan.pin {
                        // Best effort: a CPU outside this sandbox's set leaves the worker unpinned.
                        let _ = sys::pin_to(&[i % sys::cpu_count()]);
                    }
                    let ctx = WorkerCtx::new(i, fleet.counters.slot(i), fleet.counters.header(), plan);
                    model.run_worker(end, &ctx)
                }),
                Fork::Parent(pid) => fleet.pids.push(pid),
            }
        }
        if model.has_dispatcher() {
            match sys::fork()? {
                Fork::Child => child(master, "dispatcher", || {
                    match (listeners.into_dispatcher(), dispatch_rr::Policy::of(model)) {
                        (Some((listener, channels)), Some(policy)) => {
                            dispatch_rr::dispatcher(listener, channels, &fleet.counters, policy)
                        }
                        _ => io::Error::other("dispatcher forked for a model without one"),
                    }
                }),
                Fork::Parent(pid) => fleet.dispatcher = Some(pid),
            }
        }
        drop(listeners);
        Ok(fleet)
    }

    pub fn workers(&self) -> usize {
        self.pids.len()
    }

    fn all_pids(&self) -> impl Iterator<Item = libc::pid_t> + '_ {
        self.pids.iter().copied().chain(self.dispatcher)
    }

    /// Waits until every child has set up and flagged itself ready.
    pub fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.counters.all_ready() {
                return Ok(());
            }
            if let Some(gone) = self.reap_exited()?.first() {
                return Err(io::Error::other(format!("{gone} before it was ready")));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "the fleet was not ready within {} ms",
                    timeout.as_millis()
                )));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    fn name_of(&self, pid: libc::pid_t) -> String {
        match self.pids.iter().position(|&p| p == pid) {
            Some(i) => format!("worker {i} (pid {pid})"),
            None => format!("dispatcher (pid {pid})"),
        }
    }

    /// Reaps children that have already exited and describes each. A worker
    /// that died holding the accept mutex has it released, as nginx's master
    /// does, so the others go on accepting.
    fn reap_exited(&mut self) -> io::Result<Vec<String>> {
        let mut gone = Vec::new();
        let pending: Vec<_> = self.all_pids().filter(|p| !self.is_reaped(*p)).collect();
        for pid in pending {
            if let Some(r) = sys::wait4(pid, true)? {
                gone.push(format!("{} exited ({})", self.name_of(pid), describe_status(r.status)));
                self.reaped.push((pid, r));
                if let Some(i) = self.pids.iter().position(|&p| p == pid) {
                    let header = self.counters.header();
                    let held = header
                        .mutex
                        .compare_exchange(i as u64 + 1, 0, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                    if held {
                        header.pollers.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
        }
        Ok(gone)
    }

    /// Called while the load runs: reaps workers that died, so a dead
    /// accept-mutex holder does not block the rest; remembers them for `stop`.
    pub fn check_children(&mut self) -> io::Result<()> {
        let gone = self.reap_exited()?;
        self.exits.extend(gone);
        Ok(())
    }

    fn is_reaped(&self, pid: libc::pid_t) -> bool {
        self.reaped.iter().any(|(p, _)| *p == pid)
    }

    /// Stops every child (SIGTERM, then SIGKILL after the grace period) and
    /// reaps them all.
    pub fn stop(&mut self) -> io::Result<Teardown> {
        let mut early_exits = std::mem::take(&mut self.exits);
        early_exits.extend(self.reap_exited()?);
        self.signal_unreaped(libc::SIGTERM)?;
        let deadline = Instant::now() + GRACE;
        while self.all_pids().any(|p| !self.is_reaped(p)) && Instant::now() < deadline {
            self.reap_exited()?;
            std::thread::sleep(Duration::from_micros(200));
        }
        self.kill_and_reap()?;
        let reaped = |pid| self.reaped.iter().find(|(p, _)| *p == pid).map(|(_, r)| *r);
        let cpu_of = |pid| reaped(pid).map(|r| r.cpu).unwrap_or_default();
        Ok(Teardown {
            worker_cpu: self.pids.iter().map(|&p| cpu_of(p)).collect(),
            worker_switches: self
                .pids
                .iter()
                .map(|&p| reaped(p).map_or(0, |r| r.voluntary_switches))
                .collect(),
            dispatcher_cpu: self.dispatcher.map(cpu_of),
            early_exits,
        })
    }

    fn signal_unreaped(&self, sig: i32) -> io::Result<()> {
        for pid in self.all_pids().filter(|p| !self.is_reaped(*p)) {
            sys::kill(pid, sig)?;
        }
        Ok(())
    }

    /// SIGKILLs whatever is left and reaps it, blocking.
    fn kill_and_reap(&mut self) -> io::Result<()> {
        self.signal_unreaped(libc::SIGKILL)?;
        let pending: Vec<_> = self.all_pids().filter(|p| !self.is_reaped(*p)).collect();
        for pid in pending {
            if let Some(r) = sys::wait4(pid, false)? {
                self.reaped.push((pid, r));
            }
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.kill_and_reap();
    }
}

fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

/// Runs `body` as a forked child and never returns: the child must not
/// unwind or return into the master's code.
fn child(master: libc::pid_t, name: &str, body: impl FnOnce() -> io::Error) -> ! {
    sys::die_with_parent(master);
    sys::default_signals();
    sys::ignore_sigpipe();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(err) => {
            eprintln!("harness: {name}: {err}");
            sys::exit_now(1)
        }
        Err(_) => sys::exit_now(101),
    }
}
