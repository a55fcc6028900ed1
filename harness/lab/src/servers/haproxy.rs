//! HAProxy 2.6 with `nbthread` threads in one process, in its three accept
//! configurations: the default multi-queue listener (a thread accepts, then
//! pushes the connection to the least loaded of the threads' accept queues),
//! `tune.listener.multi-queue off` (the thread that accepts serves), and
//! `bind ... shards by-thread` (a SO_REUSEPORT socket per thread).
//!
//! HAProxy's workers are threads, so the harness names them by their thread
//! ids (tids): thread number `n` (HAProxy's `thread` fetch, 0-based) is the
//! `n`-th task of the process in tid order, since HAProxy creates its threads
//! one after another at startup and the kernel hands out ids in order. Every
//! response is made by HAProxy itself (`http-request return`) and carries
//! `x-worker: <tid>`, looked up in a map the harness fills through the stats
//! socket once the threads exist.
//!
//! Its own counts come from the stats socket's `show activity`: per thread,
//! `accepted` (connections this thread accepted) and `accq_pushed`
//! (connections pushed to this thread's accept queue, which it then serves).
//! With the multi-queue listener every connection is pushed, so the thread
//! that served is the one pushed to; otherwise the thread that accepted
//! serves. The stats socket is bound to thread 1 alone, and the harness
//! subtracts its own CLI connections from that thread's `accepted`. The
//! requests per thread come from HAProxy's log, a line per request naming
//! the thread that served it, kept in a ring in HAProxy's memory (never
//! dropped, unlike `log stdout` under load) and read with `show events`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::process::{self, ServerProcess};
use super::{free_port, install, Own, Server, Started, TempDir, START_TIMEOUT, STOP_GRACE};
use fleet::introspect;

/// The log line of one request: `req <thread number>`.
const LOG_PREFIX: &str = "req ";
/// The size of the ring the request log goes to (read with `show events`):
/// room for about four million lines; a longer run loses the oldest, and
/// its requests then fail the cross-check rather than pass unnoticed.
const RING_BYTES: u64 = 128 << 20;

pub struct Haproxy {
    server: Server,
    proc: ServerProcess,
    addr: SocketAddr,
    /// Thread ids, in thread-number order.
    tids: Vec<i32>,
    sock: PathBuf,
    /// CLI connections made so far (each counted in thread 1's `accepted`).
    cli_calls: u64,
    _dir: TempDir,
}

/// The configuration for `server` with `threads` threads on `port`, the
/// stats socket at `sock` and the thread map at `map`.
pub fn config(server: Server, threads: usize, port: u16, sock: &str, map: &str) -> anyhow::Result<String> {
    let (mq, shards) = match server {
        Server::Haproxy => ("", ""),
        Server::HaproxyNomq => ("    tune.listener.multi-queue off\n", ""),
        Server::HaproxyShards => ("", " shards by-thread"),
        _ => bail!("{server} is not a HAProxy configuration"),
    };
    Ok(format!(
        "global\n\
         \x20   nbthread {threads}\n\
         {mq}\
         \x20   stats socket {sock} level admin thread 1\n\
         ring requests\n\
         \x20   format raw\n\
         \x20   maxlen 64\n\
         \x20   size {RING_BYTES}\n\
         defaults\n\
         \x20   mode http\n\
         \x20   log ring@requests local0 info\n\
         \x20   log-format \"{LOG_PREFIX}%[thread]\"\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         \x20   timeout connect 5s\n\
         frontend harness\n\
         \x20   bind 127.0.0.1:{port}{shards}\n\
         \x20   http-request return status 200 content-type text/plain string \"hello haproxy\" \
         hdr x-worker \"%[thread,map_int({map})]\"\n"
    ))
}

/// Sends one command to the stats socket and returns its answer.
fn cli(sock: &Path, command: &str) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(sock).with_context(|| format!("connecting to {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .with_context(|| format!("reading HAProxy's answer to '{command}'"))?;
    Ok(answer)
}

/// The per-thread figures of a `show activity` line `name: total [ a b c ]`.
pub fn activity(text: &str, name: &str) -> anyhow::Result<Vec<u64>> {
    let line = text
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .with_context(|| format!("show activity has no '{name}' line"))?;
    let inside = line
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(i, _)| i)
        .with_context(|| format!("show activity: no per-thread figures in '{line}'"))?;
    inside
        .split_whitespace()
        .map(|n| n.parse().with_context(|| format!("show activity: '{n}' in '{line}'")))
        .collect()
}

/// The listening sockets `pid` holds, in descriptor order (the order
/// HAProxy bound them: shard 1 first).
fn listeners_by_fd(pid: i32, listeners: &[u64]) -> Vec<u64> {
    let mut fds: Vec<(u32, u64)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            let inode = link
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((fd, inode))
        })
        .filter(|(_, i)| listeners.contains(i))
        .collect();
    fds.sort_unstable();
    fds.into_iter().map(|(_, i)| i).collect()
}

impl Haproxy {
    pub fn start(server: Server, threads: usize, port: u16) -> anyhow::Result<Haproxy> {
        let haproxy = install::ensure("haproxy", "haproxy")?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        let sock = dir.0.join("stats.sock");
        let map = dir.0.join("threads.map");
        std::fs::write(&map, "").context("writing threads.map")?;
        let utf8 = |p: &Path| -> anyhow::Result<String> {
            Ok(p.to_str()
                .context("the temporary directory's path is not UTF-8")?
                .to_string())
        };
        let conf = dir.0.join("haproxy.cfg");
        std::fs::write(&conf, config(server, threads, port, &utf8(&sock)?, &utf8(&map)?)?)
            .context("writing haproxy.cfg")?;
        let mut check = Command::new(&haproxy);
        check.arg("-c").arg("-q").arg("-f").arg(&conf);
        process::output(check, "haproxy -c")?;
        let mut cmd = Command::new(&haproxy);
        // -db: in the foreground, never daemonized; stdout carries the log.
        cmd.arg("-db").arg("-f").arg(&conf).current_dir(&dir.0);
        // SIGTERM: HAProxy's hard stop.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let want_listeners = if server == Server::HaproxyShards { threads } else { 1 };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut cli_calls = 0;
        let tids = loop {
            crate::interrupt::check("waiting for HAProxy to start")?;
            proc.check_alive().context("starting HAProxy")?;
            let tids = super::threads_of(proc.pid());
            if tids.len() == threads && introspect::listening_inodes(port).len() == want_listeners && sock.exists() {
                cli_calls += 1;
                if cli(&sock, "show info").is_ok() {
                    break tids;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "HAProxy did not start {threads} threads listening on {addr} within {START_TIMEOUT:?} ({} threads); {}",
                    tids.len(),
                    proc.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if tids[0] != proc.pid() {
            bail!("HAProxy's first thread is not its main thread");
        }
        for (n, tid) in tids.iter().enumerate() {
            cli_calls += 1;
            let answer = cli(&sock, &format!("add map {} {n} {tid}", utf8(&map)?))?;
            if !answer.trim().is_empty() {
                bail!("HAProxy refused the thread map: {}", answer.trim());
            }
        }
        Ok(Haproxy {
            server,
            proc,
            addr,
            tids,
            sock,
            cli_calls,
            _dir: dir,
        })
    }
}

/// Each thread's own count from `show activity` and the request log;
/// `cli_calls` CLI connections are taken off thread 1's `accepted`.
pub fn own_counts(
    server: Server,
    activity_text: &str,
    log: &[String],
    cli_calls: u64,
    threads: usize,
) -> anyhow::Result<Vec<Own>> {
    let mut accepted = activity(activity_text, "accepted")?;
    let pushed = activity(activity_text, "accq_pushed")?;
    let full: u64 = activity(activity_text, "accq_full")?.iter().sum();
    if accepted.len() != threads || pushed.len() != threads {
        bail!("show activity lists {} threads, expected {threads}", accepted.len());
    }
    accepted[0] = accepted[0].checked_sub(cli_calls).with_context(|| {
        format!(
            "show activity: thread 1 accepted {} connections, fewer than the harness's {cli_calls} CLI calls",
            accepted[0]
        )
    })?;
    let served = if server == Server::Haproxy {
        if full > 0 {
            bail!("{full} connections found an accept queue full and were served by the thread that accepted them: show activity cannot say which");
        }
        pushed
    } else {
        accepted
    };
    let mut own: Vec<Own> = served
        .iter()
        .map(|&c| Own {
            connections: c,
            requests: 0,
        })
        .collect();
    for line in log {
        let Some(n) = line.strip_prefix(LOG_PREFIX) else {
            continue;
        };
        let n: usize = n
            .trim()
            .parse()
            .with_context(|| format!("HAProxy's log line '{line}'"))?;
        own.get_mut(n)
            .with_context(|| format!("HAProxy's log names thread {n} of {threads}"))?
            .requests += 1;
    }
    Ok(own)
}

impl Haproxy {
    /// `show activity` and the request log, asked once the load is over. A
    /// request is logged as its transaction ends, just after its response
    /// went out, so the log is read until two readings agree.
    fn counts(&mut self) -> anyhow::Result<(String, Vec<String>)> {
        let mut log: Vec<String> = Vec::new();
        for _ in 0..50 {
            self.cli_calls += 1;
            let now: Vec<String> = cli(&self.sock, "show events requests")
                .context("asking HAProxy for its request log")?
                .lines()
                .filter(|l| l.starts_with(LOG_PREFIX))
                .map(String::from)
                .collect();
            if now.len() == log.len() && !log.is_empty() {
                break;
            }
            log = now;
            std::thread::sleep(Duration::from_millis(50));
        }
        self.cli_calls += 1;
        let activity_text = cli(&self.sock, "show activity").context("asking HAProxy for its activity")?;
        Ok((activity_text, log))
    }
}

impl Started for Haproxy {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn workers(&self) -> Vec<i32> {
        self.tids.clone()
    }

    fn listen_inodes(&self, listeners: &[u64]) -> Option<Vec<Option<u64>>> {
        let held = listeners_by_fd(self.proc.pid(), listeners);
        Some(match held.len() {
            // One socket, polled by every thread.
            1 => vec![Some(held[0]); self.tids.len()],
            // A socket per thread, bound in thread order.
            n if n == self.tids.len() => held.into_iter().map(Some).collect(),
            _ => vec![None; self.tids.len()],
        })
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        self.proc.check_alive()
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        let asked = self.counts();
        // SIGUSR1: soft stop.
        let status = self.proc.stop(libc::SIGUSR1, STOP_GRACE)?;
        let (activity_text, log) = asked?;
        if !status.success() {
            bail!("HAProxy exited with {status}; {}", self.proc.stderr_tail());
        }
        let own = own_counts(self.server, &activity_text, &log, self.cli_calls, self.tids.len())?;
        Ok(self.tids.iter().copied().zip(own).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVITY: &str = "thread_id: 1 (1..4)\nstream_calls: 22 [ 7 5 5 5 ]\n\
                            accepted: 25 [ 8 4 4 9 ]\naccq_pushed: 22 [ 7 5 5 5 ]\naccq_full: 0 [ 0 0 0 0 ]\n";

    #[test]
    fn activity_lines_parse_per_thread() {
        assert_eq!(activity(ACTIVITY, "accepted").unwrap(), [8, 4, 4, 9]);
        assert_eq!(activity(ACTIVITY, "accq_pushed").unwrap(), [7, 5, 5, 5]);
        assert!(activity(ACTIVITY, "nothing").is_err());
        assert!(activity("accepted: 3 [ 1 x ]", "accepted").is_err());
    }

    #[test]
    fn the_serving_thread_is_the_pushed_one_with_the_multi_queue_listener() {
        let log: Vec<String> = ["req 0", "req 3", "req 3", "noise"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let own = own_counts(Server::Haproxy, ACTIVITY, &log, 3, 4).unwrap();
        assert_eq!(own.iter().map(|o| o.connections).collect::<Vec<_>>(), [7, 5, 5, 5]);
        assert_eq!(own.iter().map(|o| o.requests).collect::<Vec<_>>(), [1, 0, 0, 2]);
        let own = own_counts(Server::HaproxyNomq, ACTIVITY, &log, 3, 4).unwrap();
        assert_eq!(own.iter().map(|o| o.connections).collect::<Vec<_>>(), [5, 4, 4, 9]);
        assert!(own_counts(Server::HaproxyNomq, ACTIVITY, &log, 9, 4).is_err());
        assert!(own_counts(Server::HaproxyNomq, ACTIVITY, &log, 0, 3).is_err());
        let bad = vec!["req 7".to_string()];
        assert!(own_counts(Server::HaproxyShards, ACTIVITY, &bad, 0, 4).is_err());
        let full = ACTIVITY.replace("accq_full: 0 [ 0 0 0 0 ]", "accq_full: 1 [ 0 1 0 0 ]");
        assert!(own_counts(Server::Haproxy, &full, &log, 0, 4).is_err());
    }

    #[test]
    fn config_sets_each_variant() {
        for s in [Server::Haproxy, Server::HaproxyNomq, Server::HaproxyShards] {
            let c = config(s, 4, 8123, "/x/s.sock", "/x/t.map").unwrap();
            assert!(c.contains("nbthread 4"), "{c}");
            assert!(c.contains("bind 127.0.0.1:8123"), "{c}");
            assert_eq!(c.contains("multi-queue off"), s == Server::HaproxyNomq, "{c}");
            assert_eq!(c.contains("shards by-thread"), s == Server::HaproxyShards, "{c}");
            assert!(c.contains("map_int(/x/t.map)"), "{c}");
        }
        assert!(config(Server::NodeRr, 4, 1, "/s", "/m").is_err());
    }
}
