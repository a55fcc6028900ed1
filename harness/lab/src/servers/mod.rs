//! Real servers under the same load generator: the seed's Node.js demo, Node's
//! `cluster` module under both scheduling policies, and nginx in its three
//! accept configurations: how each is started, stopped and asked for its
//! own counts (the runner measures them as [`crate::running::server`]).
//!
//! A harness that only measures its own workers can be right about the kernel
//! and still miss what users run. Here the load generator attributes every
//! connection to a worker by a response header (or the body), and for the
//! servers the harness starts itself the attribution is checked against the
//! servers' own counts: Node's workers print theirs when they stop, nginx
//! writes `$pid $connection_requests` for every request to its access log.
//! Any difference fails the run's conservation check, so a wrong attribution
//! cannot pass unnoticed. The records are the same as for the harness's own
//! fleets, with one row per server worker (its pid in `pid`).

pub mod apache;
pub mod gunicorn;
pub mod h2o;
pub mod haproxy;
pub mod install;
pub mod lighttpd;
pub mod nginx;
pub mod node;
pub mod process;
pub mod uwsgi;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};

use fleet::model::Model;

/// How long a server may take to start its workers.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to stop after it is asked to.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A real server the harness can start, measure and cross-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    NodeSeed,
    NodeNone,
    NodeRr,
    NginxExclusive,
    NginxMutex,
    NginxReuseport,
    Haproxy,
    HaproxyNomq,
    HaproxyShards,
    Gunicorn,
    Uwsgi,
    UwsgiThunder,
    ApachePrefork,
    ApacheEvent,
    Lighttpd,
    H2o,
}

impl Server {
    pub const ALL: [Server; 16] = [
        Server::NodeSeed,
        Server::NodeNone,
        Server::NodeRr,
        Server::NginxExclusive,
        Server::NginxMutex,
        Server::NginxReuseport,
        Server::Haproxy,
        Server::HaproxyNomq,
        Server::HaproxyShards,
        Server::Gunicorn,
        Server::Uwsgi,
        Server::UwsgiThunder,
        Server::ApachePrefork,
        Server::ApacheEvent,
        Server::Lighttpd,
        Server::H2o,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Server::NodeSeed => "node-seed",
            Server::NodeNone => "node-none",
            Server::NodeRr => "node-rr",
            Server::NginxExclusive => "nginx-exclusive",
            Server::NginxMutex => "nginx-mutex",
            Server::NginxReuseport => "nginx-reuseport",
            Server::Haproxy => "haproxy",
            Server::HaproxyNomq => "haproxy-nomq",
            Server::HaproxyShards => "haproxy-shards",
            Server::Gunicorn => "gunicorn",
            Server::Uwsgi => "uwsgi",
            Server::UwsgiThunder => "uwsgi-thunder",
            Server::ApachePrefork => "apache-prefork",
            Server::ApacheEvent => "apache-event",
            Server::Lighttpd => "lighttpd",
            Server::H2o => "h2o",
        }
    }

    /// One line: what runs, and which of the harness's models does the same.
    pub fn describe(self) -> &'static str {
        match self {
            Server::NodeSeed => "the seed's demo: the master makes the handle and sends it to 4 forked workers, each listens and accepts itself (libuv epoll: like shared-epoll)",
            Server::NodeNone => "Node's cluster module with NODE_CLUSTER_SCHED_POLICY=none: the master's socket shared, each worker accepts (like shared-epoll)",
            Server::NodeRr => "Node's cluster module with NODE_CLUSTER_SCHED_POLICY=rr: the master accepts and hands each connection to the next worker (like dispatch-rr)",
            Server::NginxExclusive => "nginx, 4 workers, accept_mutex off: one shared socket in every worker's epoll set with EPOLLEXCLUSIVE (like epoll-exclusive)",
            Server::NginxMutex => "nginx, 4 workers, accept_mutex on: only the lock holder polls the shared socket (like accept-mutex, with a 500 ms retry)",
            Server::NginxReuseport => "nginx, 4 workers, listen ... reuseport: a socket per worker, the kernel hashes (like reuseport)",
            Server::Haproxy => "HAProxy, nbthread 4, defaults: threads accept from one socket and the multi-queue listener pushes each connection to the least loaded thread (like dispatch-least)",
            Server::HaproxyNomq => "HAProxy, nbthread 4, tune.listener.multi-queue off: one socket in every thread's epoll set, the thread that accepts serves (like shared-epoll)",
            Server::HaproxyShards => "HAProxy, nbthread 4, bind ... shards by-thread: a SO_REUSEPORT socket per thread, the kernel hashes (like reuseport)",
            Server::Gunicorn => "gunicorn, 4 sync workers: the master's socket inherited by every worker, which accepts without blocking and waits in select() (a herd, like shared-epoll); one request per connection",
            Server::Uwsgi => "uWSGI, 4 processes: the master's socket inherited by every worker, each waits for it in its own event loop and they race (a herd, like shared-epoll); one request per connection",
            Server::UwsgiThunder => "uWSGI, 4 processes, --thunder-lock: a process-shared mutex serialises accept, one worker at a time waits for the socket (like accept-mutex); one request per connection",
            Server::ApachePrefork => "Apache, mpm_prefork, 4 servers and no more, one Listen: every child blocks in accept(2) on the shared socket, unserialized (like shared-blocking)",
            Server::ApacheEvent => "Apache, mpm_event, 4 processes, one Listen: each process's listener thread polls the shared socket in its own epoll set (like shared-epoll)",
            Server::Lighttpd => "lighttpd, server.max-worker = 4: the master's socket inherited by 4 forked workers, each waits for it in its own epoll set (a herd, like shared-epoll); one request per connection",
            Server::H2o => "h2o, num-threads 4: one socket in every thread's event loop (like shared-epoll); h2o keeps no per-worker count: attributed by tid only",
        }
    }

    /// The harness model that works the same way.
    pub fn counterpart(self) -> Model {
        match self {
            Server::NodeSeed | Server::NodeNone => Model::SharedEpoll,
            Server::NodeRr => Model::DispatchRr,
            Server::NginxExclusive => Model::EpollExclusive,
            Server::NginxMutex => Model::AcceptMutex,
            Server::NginxReuseport | Server::HaproxyShards => Model::Reuseport,
            Server::Haproxy => Model::DispatchLeast,
            Server::HaproxyNomq
            | Server::Gunicorn
            | Server::Uwsgi
            | Server::ApacheEvent
            | Server::Lighttpd
            | Server::H2o => Model::SharedEpoll,
            Server::ApachePrefork => Model::SharedBlocking,
            Server::UwsgiThunder => Model::AcceptMutex,
        }
    }

    pub fn is_nginx(self) -> bool {
        matches!(
            self,
            Server::NginxExclusive | Server::NginxMutex | Server::NginxReuseport
        )
    }

    pub fn is_haproxy(self) -> bool {
        matches!(self, Server::Haproxy | Server::HaproxyNomq | Server::HaproxyShards)
    }

    pub fn is_uwsgi(self) -> bool {
        matches!(self, Server::Uwsgi | Server::UwsgiThunder)
    }

    pub fn is_apache(self) -> bool {
        matches!(self, Server::ApachePrefork | Server::ApacheEvent)
    }

    /// Whether the server closes every connection after its response
    /// (gunicorn's sync workers, uWSGI's HTTP socket, lighttpd as the harness
    /// configures it): runs of more than
    /// one request per connection are refused.
    pub fn one_request_per_connection(self) -> bool {
        matches!(self, Server::Gunicorn | Server::Lighttpd) || self.is_uwsgi()
    }

    pub fn names() -> String {
        Server::ALL.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
    }

    /// Finds the server's binary, installing its Debian package with
    /// apt-get (as root) when it is missing: done before a run leaves the
    /// host's network namespace, where apt-get has a network.
    pub fn ensure_installed(self) -> anyhow::Result<()> {
        let (binary, package) = self.binary();
        install::ensure(binary, package)?;
        if self.is_uwsgi() {
            install::ensure_file(uwsgi::PYTHON_PLUGIN, uwsgi::PYTHON_PLUGIN_PACKAGE)?;
        }
        if self == Server::Lighttpd {
            install::ensure_file(lighttpd::MAGNET, lighttpd::MAGNET_PACKAGE)?;
        }
        Ok(())
    }

    /// The server's binary and the Debian package that has it.
    pub fn binary(self) -> (&'static str, &'static str) {
        if self.is_nginx() {
            ("nginx", "nginx")
        } else if self.is_haproxy() {
            ("haproxy", "haproxy")
        } else if self == Server::Gunicorn {
            ("gunicorn", "gunicorn")
        } else if self.is_uwsgi() {
            ("uwsgi", "uwsgi")
        } else if self.is_apache() {
            ("apache2", "apache2")
        } else if self == Server::Lighttpd {
            ("lighttpd", "lighttpd")
        } else if self == Server::H2o {
            ("h2o", "h2o")
        } else {
            ("node", "nodejs")
        }
    }

    /// Finds (or installs) the server's binary and starts it with `workers`
    /// workers on 127.0.0.1:`port` (0: any free port).
    pub fn start(self, workers: usize, port: u16) -> anyhow::Result<Box<dyn Started>> {
        Ok(if self.is_nginx() {
            Box::new(nginx::Nginx::start(self, workers, port)?)
        } else if self.is_haproxy() {
            Box::new(haproxy::Haproxy::start(self, workers, port)?)
        } else if self == Server::Gunicorn {
            Box::new(gunicorn::Gunicorn::start(self, workers, port)?)
        } else if self.is_uwsgi() {
            Box::new(uwsgi::Uwsgi::start(self, workers, port)?)
        } else if self.is_apache() {
            Box::new(apache::Apache::start(self, workers, port)?)
        } else if self == Server::Lighttpd {
            Box::new(lighttpd::Lighttpd::start(self, workers, port)?)
        } else if self == Server::H2o {
            Box::new(h2o::H2o::start(self, workers, port)?)
        } else {
            Box::new(node::Node::start(self, workers, port)?)
        })
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Server {
    type Err = String;

    fn from_str(s: &str) -> Result<Server, String> {
        Server::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown server '{s}' (valid: {})", Server::names()))
    }
}

/// What one of the server's workers counted itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Own {
    pub connections: u64,
    pub requests: u64,
}

/// The [`Started`] methods every server with the fields `proc`
/// ([`process::ServerProcess`]), `addr` and `workers` answers the same way.
macro_rules! started_from_fields {
    () => {
        fn addr(&self) -> std::net::SocketAddr {
            self.addr
        }

        fn workers(&self) -> Vec<i32> {
            self.workers.clone()
        }

        fn check_alive(&mut self) -> anyhow::Result<()> {
            self.proc.check_alive()
        }
    };
}
pub(crate) use started_from_fields;

/// A server the harness started and must stop.
pub trait Started {
    fn addr(&self) -> SocketAddr;
    /// The workers' pids (thread ids where the workers are threads), in
    /// ascending order.
    fn workers(&self) -> Vec<i32>;
    /// The listening socket (inode) each worker takes its connections from,
    /// in the order of [`Started::workers`], when the server knows better
    /// than /proc can say per process: a server whose workers are threads
    /// of one process, which share its descriptors and epoll sets. `None`:
    /// read each worker's own descriptors.
    fn listen_inodes(&self, _listeners: &[u64]) -> Option<Vec<Option<u64>>> {
        None
    }
    /// Whether the server keeps a count of its own per worker (h2o does not:
    /// its run is then checked against the attribution alone, and `stop`
    /// returns no counts).
    fn keeps_counts(&self) -> bool {
        true
    }
    /// An error if the server died.
    fn check_alive(&mut self) -> anyhow::Result<()>;
    /// Stops the server and returns each worker's own counts, by pid.
    fn stop(self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>>;
}

/// Numeric ids (pids) in numeric order, others after them by name.
pub(crate) fn sort_ids(ids: &mut [String]) {
    ids.sort_by_key(|id| (id.parse::<u64>().map_err(|_| id.clone()), id.len()));
}

/// `server-counts.csv`: what each worker of the server counted itself.
pub(crate) fn write_server_counts(dir: &Path, own: &BTreeMap<i32, Own>) -> anyhow::Result<()> {
    let mut text = String::from("pid,connections,requests\n");
    for (pid, o) in own {
        text.push_str(&format!("{pid},{},{}\n", o.connections, o.requests));
    }
    records::write_atomic(dir, records::names::SERVER_COUNTS, text.as_bytes())?;
    Ok(())
}

/// A free port on 127.0.0.1 for a server that needs one in its
/// configuration (another process could take it before the server binds;
/// the server's start then fails and says so).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// A fresh private directory for a server's files, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(what: &str) -> anyhow::Result<TempDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("harness-{what}-{}-{n}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl TempDir {
    /// The last lines of the server's log `name` in this directory, on one
    /// line, for error messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.0.join(name)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        format!("{name}: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parses `worker <pid> got <C> connections <R> requests`, the seed's own
/// line with the requests added.
pub fn parse_count_line(line: &str) -> Option<(i32, Own)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        ["worker", pid, "got", c, "connections", r, "requests"] => Some((
            pid.parse().ok()?,
            Own {
                connections: c.parse().ok()?,
                requests: r.parse().ok()?,
            },
        )),
        _ => None,
    }
}

/// The WSGI application gunicorn and uWSGI serve: a tiny static body, and
/// the worker's pid in `x-worker`.
pub const WSGI_APP: &str = "\
# Written by the harness for one run: the smallest answer, naming its worker.
import os

BODY = b'hello wsgi\\n'


def app(environ, start_response):
    start_response('200 OK', [
        ('Content-Type', 'text/plain'),
        ('Content-Length', str(len(BODY))),
        ('x-worker', str(os.getpid())),
    ])
    return [BODY]


application = app
";

/// Counts per pid from a log with one line per request, on a server that
/// serves one request per connection; `pid` reads a line's pid.
pub fn one_request_per_line(
    text: &str,
    log: &str,
    pid: impl Fn(&str) -> Option<i32>,
) -> anyhow::Result<BTreeMap<i32, Own>> {
    let mut own: BTreeMap<i32, Own> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let p = pid(line).ok_or_else(|| anyhow!("{log} line {}: no pid in '{line}'", n + 1))?;
        let o = own.entry(p).or_default();
        o.connections += 1;
        o.requests += 1;
    }
    Ok(own)
}

/// Counts per pid from access-log lines `<pid> <n>`, `n` counting the
/// requests of the line's connection from `first` (nginx's
/// `$connection_requests` from 1, Apache's `%k` from 0): requests are
/// lines, connections the lines whose `n` is `first`.
pub fn pid_log(text: &str, first: u64) -> anyhow::Result<BTreeMap<i32, Own>> {
    let mut own: BTreeMap<i32, Own> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut w = line.split_whitespace();
        let (Some(pid), Some(req), None) = (w.next(), w.next(), w.next()) else {
            return Err(anyhow!(
                "access.log line {}: expected '<pid> <connection requests>', got '{line}'",
                n + 1
            ));
        };
        let (Ok(pid), Ok(req)) = (pid.parse::<i32>(), req.parse::<u64>()) else {
            return Err(anyhow!("access.log line {}: expected numbers, got '{line}'", n + 1));
        };
        let o = own.entry(pid).or_default();
        o.requests += 1;
        o.connections += u64::from(req == first);
    }
    Ok(own)
}

/// `own` with a row for every one of `workers`; an error if it names a pid
/// that is not one of them.
pub fn own_of_workers(
    server: &str,
    mut own: BTreeMap<i32, Own>,
    workers: &[i32],
) -> anyhow::Result<BTreeMap<i32, Own>> {
    for pid in workers {
        own.entry(*pid).or_default();
    }
    if let Some(stranger) = own.keys().find(|p| !workers.contains(p)) {
        return Err(anyhow!(
            "{server}'s log names pid {stranger}, which is not one of its workers"
        ));
    }
    Ok(own)
}

/// Waits until the server `proc` (`what`) has forked `workers` workers and
/// each holds the one socket listening on `addr`, which it inherited: the
/// workers' pids. `detail` says what went wrong, for the error messages
/// (the server's own log).
pub(crate) fn wait_for_forked_workers(
    proc: &mut process::ServerProcess,
    what: &str,
    workers: usize,
    addr: SocketAddr,
    detail: impl Fn(&process::ServerProcess) -> String,
) -> anyhow::Result<Vec<i32>> {
    use fleet::introspect;
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        crate::interrupt::check(&format!("waiting for {what} to start"))?;
        if let Err(e) = proc.check_alive() {
            return Err(e.context(detail(proc)).context(format!("starting {what}")));
        }
        let kids = introspect::children_of(proc.pid());
        let listening = introspect::listening_inodes(addr.port());
        if kids.len() == workers
            && listening.len() == 1
            && kids
                .iter()
                .all(|&k| introspect::held_listeners(k, &listening).len() == 1)
        {
            return Ok(kids);
        }
        if std::time::Instant::now() > deadline {
            return Err(anyhow!(
                "{what} did not start {workers} workers on {addr} within {START_TIMEOUT:?} ({} running); {}",
                kids.len(),
                detail(proc)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The thread ids of `pid`, in ascending order.
pub(crate) fn threads_of(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// Waits up to `limit` until every one of `pids` has exited (gone, or a
/// zombie nobody reaps); a SIGINT/SIGTERM of the harness cuts it short.
pub(crate) fn wait_gone(pids: &[i32], limit: Duration) -> anyhow::Result<()> {
    let exited = |pid: &i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) == Some("Z")
        })
    };
    let deadline = std::time::Instant::now() + limit;
    while !pids.iter().all(exited) && std::time::Instant::now() < deadline {
        crate::interrupt::check("waiting for the server's workers to exit")?;
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Errors for a server line that says something unexpected.
pub fn unexpected(server: Server, what: &str) -> anyhow::Error {
    anyhow!("{server}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_round_trip_and_have_counterparts() {
        for s in Server::ALL {
            assert_eq!(s.name().parse::<Server>().unwrap(), s);
            assert!(Model::ALL.contains(&s.counterpart()));
        }
        assert!("nginx".parse::<Server>().unwrap_err().contains("node-seed"));
    }

    #[test]
    fn count_lines_parse() {
        assert_eq!(
            parse_count_line("worker 63999 got 14561 connections 14561 requests"),
            Some((
                63999,
                Own {
                    connections: 14561,
                    requests: 14561
                }
            ))
        );
        assert_eq!(parse_count_line("worker 63999 got 14561 connections"), None);
        assert_eq!(parse_count_line("worker x got 1 connections 1 requests"), None);
    }

    #[test]
    fn ids_sort_numerically_then_by_name() {
        let mut ids: Vec<String> = ["900", "1000", "b", "a", "20"].iter().map(|s| s.to_string()).collect();
        sort_ids(&mut ids);
        assert_eq!(ids, ["20", "900", "1000", "a", "b"]);
    }
}
