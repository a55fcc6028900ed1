//! Forks, supervises and tears down a fleet of worker processes.
//!
//! Every child is forked while the harness has a single thread (checked), asks
//! the kernel to SIGKILL it when the harness dies (PR_SET_PDEATHSIG, then a
//! getppid check for the race), and runs with default signal actions so that
//! SIGTERM stops it even inside a blocking accept(2) (but ignores SIGINT: a
//! Ctrl-C is the harness's to handle). Teardown sends SIGTERM,
//! waits a grace period, escalates to SIGKILL, and reaps every child with
//! wait4, which also gives its CPU time. Dropping a fleet that was not stopped
//! kills and reaps it, so no error path leaves a process behind.

use std::io;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::model::{dispatch_rr, Listeners, Model, WorkerEnd};
use crate::worker::{WorkerCtx, WorkerPlan};
use sys::{Fork, Reaped};

/// How long workers get to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

pub struct Fleet {
    pub model: Model,
    pub kind: FleetKind,
    /// Each worker's process id, or its thread id in a thread fleet, by
    /// worker index (what `/proc/<id>/` shows it by).
    pub pids: Vec<libc::pid_t>,
    /// The processes forked for workers: one per worker, or the one process
    /// of a thread fleet.
    procs: Vec<libc::pid_t>,
    /// The dispatcher's pid, for models that have one.
    pub dispatcher: Option<libc::pid_t>,
    pub counters: Counters,
    /// Children already reaped (pid, how they ended).
    reaped: Vec<(libc::pid_t, Reaped)>,
    /// Children found dead while the load ran, described.
    exits: Vec<String>,
    /// Workers the fleet started with (slots 0..base); spares follow.
    base: usize,
    /// Forked replacements waiting to take over a worker's place.
    spares: Vec<Spare>,
    /// Processes the master killed or retired on purpose: their exit is
    /// part of the experiment, not a failure.
    planned_exits: Vec<libc::pid_t>,
}

/// A forked replacement worker, blocked until the master activates it.
struct Spare {
    /// Its counter slot and worker index.
    slot: usize,
    /// The master's end of its activation channel: one byte starts it.
    wake: std::os::fd::OwnedFd,
    active: bool,
}

/// What `stop` found.
pub struct Teardown {
    /// Children that had exited before they were asked to, described.
    pub early_exits: Vec<String>,
}

/// How a fleet's workers are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FleetKind {
    /// One forked process per worker, as Node's cluster and nginx do.
    #[default]
    Processes,
    /// One forked process whose threads are the workers.
    Threads,
}

impl FleetKind {
    pub fn name(self) -> &'static str {
        match self {
            FleetKind::Processes => "processes",
            FleetKind::Threads => "threads",
        }
    }
}

impl std::str::FromStr for FleetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<FleetKind, String> {
        match s {
            "processes" => Ok(FleetKind::Processes),
            "threads" => Ok(FleetKind::Threads),
            _ => Err(format!("unknown fleet '{s}' (valid: processes, threads)")),
        }
    }
}

impl Fleet {
    /// Forks `workers` workers (and a dispatcher when the model has one) over
    /// what `prepare` set up; the master keeps none of the listening sockets.
    /// `plan`: service time, slow and stalled workers, pinning. With
    /// `FleetKind::Threads` one process is forked and its threads are the
    /// workers.
    pub fn start(
        model: Model,
        listeners: Listeners,
        workers: usize,
        plan: &WorkerPlan,
        kind: FleetKind,
    ) -> io::Result<Fleet> {
        let extra = usize::from(model.has_dispatcher());
        let mut fleet = Fleet {
            model,
            kind,
            pids: Vec::with_capacity(workers),
            procs: Vec::new(),
            dispatcher: None,
            counters: Counters::new(workers + plan.spares + extra)?,
            reaped: Vec::new(),
            exits: Vec::new(),
            base: workers,
            spares: Vec::new(),
            planned_exits: Vec::new(),
        };
        if plan.spares > 0 && kind != FleetKind::Processes {
            return Err(io::Error::other(format!(
                "replacement workers need a process fleet ({model}, {})",
                kind.name()
            )));
        }
        let master = sys::getpid();
        let worker = |i: usize, end, shared: Option<&sys::Epoll>| {
            if plan.pin {
                // Best effort: a CPU outside this sandbox's set leaves the worker unpinned.
                let _ = sys::pin_to(&[i % sys::cpu_count()]);
            }
            let mut ctx = WorkerCtx::new(i, fleet.counters.slot(i), fleet.counters.header(), plan);
            ctx.shared_epoll = shared;
            model.run_worker(end, &ctx)
        };
        match kind {
            FleetKind::Processes => {
                for i in 0..workers {
                    match sys::fork()? {
                        Fork::Child => child(master, &format!("worker {i}"), || {
                            worker(i, listeners.into_worker(i), None)
                        }),
                        Fork::Parent(pid) => {
                            fleet.pids.push(pid);
                            fleet.procs.push(pid);
                        }
                    }
                }
            }
            FleetKind::Threads => match sys::fork()? {
                Fork::Child => child(master, "fleet process", || {
                    let ends = match listeners.into_threads(workers) {
                        Ok(ends) => ends,
                        Err(e) => return e,
                    };
                    let shared = match plan.shared_epoll_set.then(|| shared_epoll_set(model, &ends, workers)) {
                        Some(Ok(set)) => Some(set),
                        Some(Err(e)) => return e,
                        None => None,
                    };
                    let shared = shared.as_ref();
                    // Threads run until one fails; the master stops the process.
                    let (tx, rx) = std::sync::mpsc::channel();
                    std::thread::scope(|s| {
                        for (i, end) in ends.into_iter().enumerate() {
                            let tx = tx.clone();
                            let worker = &worker;
                            s.spawn(move || {
                                let e = worker(i, end, shared);
                                let _ = tx.send(format!("worker {i}: {e}"));
                            });
                        }
                        let first = rx.recv().unwrap_or_else(|_| "every worker thread ended".into());
                        eprintln!("harness: {first}");
                        sys::exit_now(1)
                    })
                }),
                Fork::Parent(pid) => fleet.procs.push(pid),
            },
        }
        for j in 0..plan.spares {
            let slot = workers + j;
            let (wake, wait) = sys::seqpacket_pair()?;
            match sys::fork()? {
                Fork::Child => child(master, &format!("replacement worker {slot}"), || {
                    drop(wake);
                    // A shared listener is kept (holding it changes nothing
                    // until the spare accepts), and so is the spare's own
                    // channel from the dispatcher; per-worker sockets are all
                    // closed now, or a killed worker's socket would live on here.
                    let addr = listeners.addr();
                    let kept = match listeners {
                        shared @ Listeners::Shared { .. } => Some(shared.into_worker(slot)),
                        dispatch @ Listeners::Dispatch { .. } => Some(dispatch.into_worker(slot)),
                        per_worker => {
                            drop(per_worker);
                            None
                        }
                    };
                    let mut byte = [0u8; 1];
                    loop {
                        match sys::read(wait.as_fd(), &mut byte) {
                            Ok(1) => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            // The master closed the channel or is gone: never needed.
                            _ => sys::exit_now(0),
                        }
                    }
                    let end = match kept {
                        Some(end) => end,
                        None => match sys::tcp_listener(
                            &addr,
                            sys::ListenOpts {
                                reuseport: true,
                                nonblocking: false,
                                backlog: plan.backlog,
                            },
                        ) {
                            Ok(l) => WorkerEnd::Listener(l),
                            Err(e) => return e,
                        },
                    };
                    worker(slot, end, None)
                }),
                Fork::Parent(pid) => {
                    drop(wait);
                    fleet.pids.push(pid);
                    fleet.procs.push(pid);
                    fleet.spares.push(Spare {
                        slot,
                        wake,
                        active: false,
                    });
                }
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

    /// The process worker `i` runs in.
    pub fn process_of(&self, i: usize) -> libc::pid_t {
        match self.kind {
            FleetKind::Processes => self.procs[i],
            FleetKind::Threads => self.procs[0],
        }
    }

    /// Workers the fleet started with (not counting replacements).
    pub fn workers(&self) -> usize {
        self.base
    }

    /// Worker slots that served or may serve: the first workers and the
    /// replacements activated so far.
    pub fn slots_in_use(&self) -> usize {
        self.base + self.spares.iter().filter(|s| s.active).count()
    }

    /// Starts the next waiting replacement and returns its worker index
    /// (`None`: no spare left). It is ready when its slot says so.
    pub fn activate_spare(&mut self) -> io::Result<Option<usize>> {
        let Some(spare) = self.spares.iter_mut().find(|s| !s.active) else {
            return Ok(None);
        };
        spare.active = true;
        sys::write(spare.wake.as_fd(), &[1])?;
        Ok(Some(spare.slot))
    }

    /// SIGKILLs worker `i` (a fault injected on purpose).
    pub fn kill_worker(&mut self, i: usize) -> io::Result<libc::pid_t> {
        let pid = self.procs[i];
        self.planned_exits.push(pid);
        sys::kill(pid, libc::SIGKILL)?;
        Ok(pid)
    }

    /// Asks worker `i` to retire gracefully: it closes its listening socket
    /// and exits between connections.
    pub fn retire_worker(&mut self, i: usize) -> io::Result<libc::pid_t> {
        let pid = self.procs[i];
        self.planned_exits.push(pid);
        self.counters.slot(i).retire.store(1, Ordering::Release);
        if !self.is_reaped(pid) {
            sys::kill(pid, crate::worker::RETIRE_SIGNAL)?;
        }
        Ok(pid)
    }

    /// Every process of the fleet: the workers' (spares included; one for
    /// a thread fleet) and the dispatcher's.
    pub fn processes(&self) -> Vec<libc::pid_t> {
        self.all_pids().collect()
    }

    /// The processes to signal and reap.
    fn all_pids(&self) -> impl Iterator<Item = libc::pid_t> + '_ {
        self.procs.iter().copied().chain(self.dispatcher)
    }

    /// Waits until every child has set up and flagged itself ready, or
    /// `give_up` says to stop waiting (a SIGINT or SIGTERM of the harness:
    /// the load that follows then starts nothing).
    pub fn wait_ready(&mut self, timeout: Duration, give_up: &dyn Fn() -> bool) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // The dispatcher's slot is the last; spares are not ready until used.
            let last = self.counters.slot(self.counters.slots() - 1);
            let dispatcher_ready = !self.model.has_dispatcher() || last.ready.load(Ordering::Acquire) == 1;
            if (self.counters.ready_upto(self.base) && dispatcher_ready) || give_up() {
                if self.kind == FleetKind::Threads {
                    // Each worker thread is known by its thread id from here
                    // on (by the fleet process's while it has none yet).
                    let process = self.procs.first().copied().unwrap_or(0);
                    self.pids = (0..self.workers())
                        .map(
                            |i| match self.counters.slot(i).tid.load(Ordering::Acquire) as libc::pid_t {
                                0 => process,
                                tid => tid,
                            },
                        )
                        .collect();
                }
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
        match (self.kind, self.procs.iter().position(|&p| p == pid)) {
            (FleetKind::Threads, Some(_)) => format!("the fleet process (pid {pid})"),
            (FleetKind::Processes, Some(i)) => format!("worker {i} (pid {pid})"),
            (_, None) => format!("dispatcher (pid {pid})"),
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
                if !self.planned_exits.contains(&pid) {
                    gone.push(format!("{} exited ({})", self.name_of(pid), describe_status(r.status)));
                }
                self.reaped.push((pid, r));
                let worker = self.procs.iter().position(|&p| p == pid);
                if let Some(i) = worker.filter(|_| self.kind == FleetKind::Processes) {
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

    /// Stops every child (SIGTERM, then SIGKILL after the grace period, or
    /// at once when `hurry` says so) and reaps them all.
    pub fn stop(&mut self, hurry: &dyn Fn() -> bool) -> io::Result<Teardown> {
        let mut early_exits = std::mem::take(&mut self.exits);
        early_exits.extend(self.reap_exited()?);
        self.signal_unreaped(libc::SIGTERM)?;
        let deadline = Instant::now() + GRACE;
        while self.all_pids().any(|p| !self.is_reaped(p)) && Instant::now() < deadline && !hurry() {
            self.reap_exited()?;
            std::thread::sleep(Duration::from_micros(200));
        }
        self.kill_and_reap()?;
        Ok(Teardown { early_exits })
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

/// One epoll set for every worker thread, holding the shared listener once,
/// tagged with the fleet size (no worker's index): what a threaded server
/// with a single epoll instance does.
fn shared_epoll_set(model: Model, ends: &[WorkerEnd], workers: usize) -> io::Result<sys::Epoll> {
    let Some(WorkerEnd::Listener(listener)) = ends.first() else {
        return Err(io::Error::other(format!(
            "{model} has no shared listener for one epoll set"
        )));
    };
    let mut events = libc::EPOLLIN as u32;
    if model == Model::EpollExclusive {
        events |= libc::EPOLLEXCLUSIVE as u32;
    }
    let set = sys::Epoll::new()?;
    set.add(std::os::fd::AsFd::as_fd(listener), events, workers as u64)?;
    Ok(set)
}

/// Runs `body` as a forked child and never returns: the child must not
/// unwind or return into the master's code.
fn child(master: libc::pid_t, name: &str, body: impl FnOnce() -> io::Error) -> ! {
    sys::die_with_parent(master);
    sys::default_signals();
    // A Ctrl-C goes to the terminal's whole process group: only the harness
    // acts on it and stops the fleet itself (interrupt.rs).
    sys::ignore_sigint();
    sys::ignore_sigpipe();
    // Wakes a worker blocked in accept or epoll_wait to retire (best effort:
    // without it a retiring worker leaves after its next connection).
    let _ = sys::interrupt_on(crate::worker::RETIRE_SIGNAL);
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(err) => {
            eprintln!("harness: {name}: {err}");
            sys::exit_now(1)
        }
        Err(_) => sys::exit_now(101),
    }
}
