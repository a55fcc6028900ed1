//! The accept models: how a worker gets its connections.
//!
//! One name per model, used everywhere (CLI, CSV, plots). Each model lives in
//! its own module with two halves: what the master sets up before it forks
//! (`prepare`), and the loop a worker runs after the fork. This module only
//! routes between them.

pub mod accept_mutex;
pub mod dispatch_least;
pub mod dispatch_rr;
pub mod epoll_exclusive;
pub mod io_uring;
pub mod reuseport;
pub mod reuseport_cbpf;
pub mod reuseport_ebpf_least;
pub mod reuseport_ebpf_migrate;
pub mod reuseport_ebpf_rr;
pub mod shared_blocking;
pub mod shared_epoll;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::counters::Slot;
pub(crate) use crate::worker::transient_accept_error;
use crate::worker::WorkerCtx;

/// Default listen backlog (nginx's and Node's default, 511).
pub const BACKLOG: i32 = 511;

/// How `reuseport-cbpf` picks a socket for each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Steer {
    /// The CPU that handles the connection's SYN, modulo the fleet size.
    #[default]
    Cpu,
    /// A random socket per connection.
    Random,
}

impl Steer {
    pub fn name(self) -> &'static str {
        match self {
            Steer::Cpu => "cpu",
            Steer::Random => "random",
        }
    }
}

impl std::str::FromStr for Steer {
    type Err = String;

    fn from_str(s: &str) -> Result<Steer, String> {
        match s {
            "cpu" => Ok(Steer::Cpu),
            "random" => Ok(Steer::Random),
            _ => Err(format!("unknown steering '{s}' (valid: cpu, random)")),
        }
    }
}

/// Settings a model's set-up takes besides the address and the fleet size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelOpts {
    /// listen(2) backlog of every listening socket.
    pub backlog: i32,
    /// `reuseport-cbpf`: how the BPF program picks a socket.
    pub steer: Steer,
}

impl Default for ModelOpts {
    fn default() -> Self {
        ModelOpts {
            backlog: BACKLOG,
            steer: Steer::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    SharedBlocking,
    SharedEpoll,
    EpollExclusive,
    Reuseport,
    ReuseportCbpf,
    ReuseportEbpfRr,
    ReuseportEbpfLeast,
    ReuseportEbpfMigrate,
    AcceptMutex,
    DispatchRr,
    DispatchLeast,
    IoUring,
}

impl Model {
    pub const ALL: [Model; 12] = [
        Model::SharedBlocking,
        Model::SharedEpoll,
        Model::EpollExclusive,
        Model::Reuseport,
        Model::DispatchRr,
        Model::DispatchLeast,
        Model::AcceptMutex,
        Model::ReuseportCbpf,
        Model::ReuseportEbpfRr,
        Model::ReuseportEbpfLeast,
        Model::ReuseportEbpfMigrate,
        Model::IoUring,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::SharedBlocking => "shared-blocking",
            Model::SharedEpoll => "shared-epoll",
            Model::EpollExclusive => "epoll-exclusive",
            Model::Reuseport => "reuseport",
            Model::DispatchRr => "dispatch-rr",
            Model::DispatchLeast => "dispatch-least",
            Model::AcceptMutex => "accept-mutex",
            Model::ReuseportCbpf => "reuseport-cbpf",
            Model::ReuseportEbpfRr => "reuseport-ebpf-rr",
            Model::ReuseportEbpfLeast => "reuseport-ebpf-least",
            Model::ReuseportEbpfMigrate => "reuseport-ebpf-migrate",
            Model::IoUring => "io-uring",
        }
    }

    /// One line: how a worker gets a connection, and who does this in the wild.
    pub fn describe(self) -> &'static str {
        match self {
            Model::SharedBlocking => "one socket made before fork; every worker blocks in accept(2); the kernel wakes one waiter, FIFO (classic prefork)",
            Model::SharedEpoll => "one socket made before fork; each worker has its own level-triggered epoll set and accepts until EAGAIN (libuv, Node's SCHED_NONE: the herd)",
            Model::EpollExclusive => "as shared-epoll, registered with EPOLLEXCLUSIVE so one waiter is woken (nginx with accept_mutex off)",
            Model::Reuseport => "one SO_REUSEPORT socket per worker on the same port; the kernel hashes the 4-tuple (nginx reuseport, Envoy)",
            Model::DispatchRr => "the master accepts and passes each fd to a worker over a Unix socketpair (SCM_RIGHTS), round robin (Node cluster SCHED_RR)",
            Model::DispatchLeast => "as dispatch-rr, to the worker with the fewest connections handed but not yet closed (HAProxy, actix)",
            Model::AcceptMutex => "shared socket; only the holder of a process-shared lock polls it, released after each accept batch (nginx accept_mutex on)",
            Model::ReuseportCbpf => "reuseport plus a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) that picks the socket: --steer cpu (socket = CPU of the SYN mod N; workers beyond the CPU count get nothing) or random (Cloudflare)",
            Model::ReuseportEbpfRr => "reuseport plus an eBPF program (SO_ATTACH_REUSEPORT_EBPF, assembled by the harness) that deals connections in turn from an atomic counter in a map: exact round robin without a dispatcher (H2O)",
            Model::ReuseportEbpfLeast => "reuseport plus an SK_REUSEPORT eBPF program that picks the socket of the worker with the fewest connections steered to it but not yet closed (counts in an mmap-ed BPF array the workers update without a syscall), ties in turn",
            Model::ReuseportEbpfMigrate => "reuseport-ebpf-least loaded for SELECT_OR_MIGRATE: a closing socket's queued connections move to a live one whatever tcp_migrate_req says (a reload resets nothing)",
            Model::IoUring => "shared socket; each worker accepts with an io_uring multishot accept on its own ring: the first armed worker is woken for every connection and takes them all",
        }
    }

    /// Whether a dispatcher process accepts on the workers' behalf.
    pub fn has_dispatcher(self) -> bool {
        matches!(self, Model::DispatchRr | Model::DispatchLeast)
    }

    /// Whether a worker may serve several connections at once
    /// (`--worker-concurrency K > 1`): only where it waits in epoll. A worker
    /// blocked in accept(2) cannot serve open connections meanwhile, and an
    /// io_uring multishot accept keeps accepting however busy the worker is.
    pub fn supports_worker_concurrency(self) -> bool {
        matches!(
            self,
            Model::SharedEpoll | Model::EpollExclusive | Model::AcceptMutex | Model::DispatchRr | Model::DispatchLeast
        )
    }

    pub fn names() -> String {
        Model::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    }

    /// Sets up, in the master and before any fork, what the workers will share.
    /// Fails with `AddrInUse` if the port is taken.
    pub fn prepare(self, addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
        match self {
            Model::SharedBlocking => shared_blocking::prepare(addr, opts),
            Model::SharedEpoll | Model::EpollExclusive => shared_epoll::prepare(addr, opts),
            Model::Reuseport => reuseport::prepare(addr, workers, opts),
            Model::DispatchRr => dispatch_rr::prepare(addr, workers, opts),
            Model::DispatchLeast => dispatch_least::prepare(addr, workers, opts),
            Model::AcceptMutex => accept_mutex::prepare(addr, opts),
            Model::ReuseportCbpf => reuseport_cbpf::prepare(addr, workers, opts),
            Model::ReuseportEbpfRr => reuseport_ebpf_rr::prepare(addr, workers, opts),
            Model::ReuseportEbpfLeast => reuseport_ebpf_least::prepare(addr, workers, opts),
            Model::ReuseportEbpfMigrate => reuseport_ebpf_migrate::prepare(addr, workers, opts),
            Model::IoUring => io_uring::prepare(addr, opts),
        }
    }

    /// A worker's loop; returns only on an error that stops the worker.
    pub fn run_worker(self, end: WorkerEnd, ctx: &WorkerCtx<'_>) -> io::Error {
        match (self, end) {
            (Model::SharedBlocking, WorkerEnd::Listener(l)) => shared_blocking::run(l, ctx),
            (Model::SharedEpoll, WorkerEnd::Listener(l)) => shared_epoll::run(l, ctx),
            (Model::EpollExclusive, WorkerEnd::Listener(l)) => epoll_exclusive::run(l, ctx),
            (Model::Reuseport, WorkerEnd::Listener(l)) => reuseport::run(l, ctx),
            (Model::DispatchRr, WorkerEnd::Channel(c)) => dispatch_rr::run(c, ctx),
            (Model::DispatchLeast, WorkerEnd::Channel(c)) => dispatch_least::run(c, ctx),
            (Model::AcceptMutex, WorkerEnd::Listener(l)) => accept_mutex::run(l, ctx),
            (Model::ReuseportCbpf, WorkerEnd::Listener(l)) => reuseport_cbpf::run(l, ctx),
            (Model::ReuseportEbpfRr, WorkerEnd::Listener(l)) => reuseport_ebpf_rr::run(l, ctx),
            (Model::ReuseportEbpfLeast, WorkerEnd::Listener(l)) => reuseport_ebpf_least::run(l, ctx),
            (Model::ReuseportEbpfMigrate, WorkerEnd::Listener(l)) => reuseport_ebpf_migrate::run(l, ctx),
            (Model::IoUring, WorkerEnd::Listener(l)) => io_uring::run(l, ctx),
            (m, _) => io::Error::other(format!("{m}: worker handed the wrong kind of endpoint")),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Model, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown model '{s}' (valid: {})", Model::names()))
    }
}

/// An eBPF map or program the kernel refused, as one line: what was being
/// done, the errno (EPERM: no CAP_BPF or CAP_SYS_ADMIN) and the verifier's
/// last words, if it spoke.
pub(crate) fn ebpf_refused(what: &str, e: io::Error) -> io::Error {
    let why = match sys::load_error(&e) {
        Some(l) => {
            let last = l.log.lines().rev().find(|s| !s.trim().is_empty()).unwrap_or("");
            format!(
                "{} (errno {}); the verifier said: {last}",
                io::Error::from_raw_os_error(l.errno),
                l.errno
            )
        }
        None if e.raw_os_error() == Some(libc::EPERM) => format!("{e}: loading eBPF needs CAP_BPF (root)"),
        None => e.to_string(),
    };
    io::Error::new(io::ErrorKind::Unsupported, format!("{what}: {why}"))
}

/// What the master holds between `prepare` and the forks.
pub enum Listeners {
    /// One listening socket that every worker inherits.
    Shared { listener: OwnedFd, addr: SocketAddr },
    /// One listening socket per worker, all on the same port.
    PerWorker { listeners: Vec<OwnedFd>, addr: SocketAddr },
    /// A listening socket for the dispatcher and one channel per worker
    /// (dispatcher end, worker end).
    Dispatch {
        listener: OwnedFd,
        channels: Vec<(OwnedFd, OwnedFd)>,
        addr: SocketAddr,
    },
}

/// What one worker keeps after the fork.
pub enum WorkerEnd {
    Listener(OwnedFd),
    Channel(OwnedFd),
}

impl Listeners {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Listeners::Shared { addr, .. } | Listeners::PerWorker { addr, .. } | Listeners::Dispatch { addr, .. } => {
                *addr
            }
        }
    }

    /// In worker `i`'s process: keeps its endpoint and closes everything else,
    /// so that no worker holds another's socket open.
    pub fn into_worker(self, i: usize) -> WorkerEnd {
        match self {
            Listeners::Shared { listener, .. } => WorkerEnd::Listener(listener),
            Listeners::PerWorker { mut listeners, .. } => WorkerEnd::Listener(listeners.swap_remove(i)),
            Listeners::Dispatch { mut channels, .. } => WorkerEnd::Channel(channels.swap_remove(i).1),
        }
    }

    /// In a thread fleet's process: every worker's endpoint. A shared
    /// listener is duplicated per thread (the same socket, as after a fork);
    /// per-worker sockets and channels go one to each thread.
    pub fn into_threads(self, n: usize) -> io::Result<Vec<WorkerEnd>> {
        match self {
            Listeners::Shared { listener, .. } => {
                (0..n).map(|_| listener.try_clone().map(WorkerEnd::Listener)).collect()
            }
            Listeners::PerWorker { listeners, .. } => Ok(listeners.into_iter().map(WorkerEnd::Listener).collect()),
            Listeners::Dispatch { channels, .. } => {
                Ok(channels.into_iter().map(|(_, w)| WorkerEnd::Channel(w)).collect())
            }
        }
    }

    /// In the dispatcher's process: the listener and the dispatcher ends of the
    /// channels; the workers' ends are closed. `None` for models without one.
    pub fn into_dispatcher(self) -> Option<(OwnedFd, Vec<OwnedFd>)> {
        match self {
            Listeners::Dispatch { listener, channels, .. } => {
                Some((listener, channels.into_iter().map(|(d, _)| d).collect()))
            }
            _ => None,
        }
    }
}

/// One listening socket on `addr` for a model that shares it (or hands it
/// to a dispatcher), with the address it got (the port, if `addr` asked for 0).
pub(crate) fn shared_listener(
    addr: SocketAddr,
    nonblocking: bool,
    opts: &ModelOpts,
) -> io::Result<(OwnedFd, SocketAddr)> {
    let listener = sys::tcp_listener(
        &addr,
        sys::ListenOpts {
            reuseport: false,
            nonblocking,
            backlog: opts.backlog,
        },
    )?;
    let addr = sys::local_addr(std::os::fd::AsFd::as_fd(&listener))?;
    Ok((listener, addr))
}

/// The accept loop shared by the blocking models: block in accept(2), serve,
/// repeat. Each return of accept is one wakeup.
pub(crate) fn blocking_accept_loop(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    blocking_accept_loop_then(listener, ctx, || {})
}

/// [`blocking_accept_loop`], calling `served` after each connection is
/// served and closed.
pub(crate) fn blocking_accept_loop_then(listener: OwnedFd, ctx: &WorkerCtx<'_>, served: impl Fn()) -> io::Error {
    use std::os::fd::{AsFd, AsRawFd};
    let slot = ctx.slot;
    Slot::set_fd(slot.listen_fd, listener.as_raw_fd());
    slot.ready.store(1, std::sync::atomic::Ordering::Release);
    loop {
        ctx.retire_if_asked();
        match sys::accept(listener.as_fd()) {
            Ok(conn) => {
                Slot::bump(slot.wakeups);
                ctx.take(conn);
                served();
            }
            Err(e) if transient_accept_error(&e) => Slot::bump(slot.wakeups),
            Err(e) => return e,
        }
    }
}
