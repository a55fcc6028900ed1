//! h2o 2.2 with `num-threads: 4`: one listening socket, which every worker
//! thread of the one process polls in its own event loop, in the
//! foreground.
//!
//! h2o keeps no per-worker count, so the load generator's attribution is
//! the only per-worker figure the harness has of it (the kernel's,
//! `--attribute kernel`, is the count the README names): a run checks that
//! every response named a worker and no connection was lost, as for
//! `--target`. The answer comes from a few lines of mruby, run by the thread
//! that serves the request: `hello h2o` with `x-worker: <tid>`, read from
//! /proc/thread-self/stat. The workers are the main thread (h2o's thread 0)
//! and the threads made after the first one it makes, a timer thread that
//! sleeps (seen in /proc: in nanosleep where the others wait in epoll; a
//! response from it would show as a fifth worker and fail the tests).
//!
//! `h2o-reuseport` (`tcp-reuseport: ON`) is not here: Debian 12's h2o
//! 2.2.5 does not know the directive.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::process::{self, ServerProcess};
use super::{free_port, install, Own, Server, Started, TempDir, START_TIMEOUT, STOP_GRACE};
use fleet::introspect;

pub struct H2o {
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    _dir: TempDir,
}

/// The configuration with `threads` worker threads on `port`.
pub fn config(threads: usize, port: u16) -> String {
    format!(
        "# Written by the harness for one run.\n\
         listen:\n\
         \x20 host: 127.0.0.1\n\
         \x20 port: {port}\n\
         num-threads: {threads}\n\
         hosts:\n\
         \x20 default:\n\
         \x20   paths:\n\
         \x20     /:\n\
         \x20       mruby.handler: |\n\
         \x20         Proc.new do |env|\n\
         \x20           tid = File.read(\"/proc/thread-self/stat\").split(\" \")[0]\n\
         \x20           [200, {{\"content-type\" => \"text/plain\", \"x-worker\" => tid}}, [\"hello h2o\\n\"]]\n\
         \x20         end\n"
    )
}

impl H2o {
    pub fn start(server: Server, threads: usize, port: u16) -> anyhow::Result<H2o> {
        let h2o = install::ensure("h2o", "h2o")?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        let conf = dir.0.join("h2o.conf");
        std::fs::write(&conf, config(threads, port)).context("writing h2o.conf")?;
        let mut test = Command::new(&h2o);
        test.arg("-t").arg("-c").arg(&conf);
        process::output(test, "h2o -t")?;
        let mut cmd = Command::new(&h2o);
        cmd.arg("-c").arg(&conf).current_dir(&dir.0);
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        let workers = loop {
            crate::interrupt::check("waiting for h2o to start")?;
            proc.check_alive().context("starting h2o")?;
            let tids = super::threads_of(proc.pid());
            // The main thread and an extra thread (h2o's timer, made first)
            // besides the others.
            if tids.len() == threads + 1 && introspect::listening_inodes(port).len() == 1 {
                let mut workers = vec![tids[0]];
                workers.extend_from_slice(&tids[2..]);
                break workers;
            }
            if Instant::now() > deadline {
                bail!(
                    "h2o did not start {threads} threads listening on {addr} within {START_TIMEOUT:?} ({} threads); {}",
                    tids.len(),
                    proc.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(H2o {
            proc,
            addr,
            workers,
            _dir: dir,
        })
    }
}

impl Started for H2o {
    super::started_from_fields!();

    fn keeps_counts(&self) -> bool {
        false
    }

    fn listen_inodes(&self, listeners: &[u64]) -> Option<Vec<Option<u64>>> {
        // One socket, in every thread's event loop.
        let one = (listeners.len() == 1).then(|| listeners[0]);
        Some(vec![one; self.workers.len()])
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        self.proc.stop(libc::SIGTERM, STOP_GRACE)?;
        Ok(BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_threads_and_names_the_tid() {
        let c = config(4, 8123);
        assert!(c.contains("num-threads: 4\n"), "{c}");
        assert!(c.contains("port: 8123\n"), "{c}");
        assert!(c.contains("/proc/thread-self/stat"), "{c}");
        assert!(!c.contains("reuseport"), "{c}");
    }
}
