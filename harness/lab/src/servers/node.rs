//! The Node.js servers: the seed's own demo (`scripts/node-cluster/seed-*.js`)
//! and the `cluster` module version (`scripts/node-cluster/cluster.js`) under
//! NODE_CLUSTER_SCHED_POLICY `none` or `rr`.
//!
//! The scripts are built into the harness and written to a private directory
//! for each run, so the harness works from any directory. They speak a small
//! protocol on stdout (see scripts/node-cluster/README.md): `worker <pid>
//! listening` for each worker, `policy rr|none` (cluster only), `ready
//! <host>:<port>`; after SIGTERM each worker prints `worker <pid> got <C>
//! connections <R> requests` and the master `done`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

use super::process::ServerProcess;
use super::{install, parse_count_line, unexpected, Own, Server, Started, TempDir, START_TIMEOUT, STOP_GRACE};

const SEED_MASTER: &str = include_str!("../../../../scripts/node-cluster/seed-master.js");
const SEED_WORKER: &str = include_str!("../../../../scripts/node-cluster/seed-worker.js");
const CLUSTER: &str = include_str!("../../../../scripts/node-cluster/cluster.js");

pub struct Node {
    server: Server,
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    _dir: TempDir,
}

impl Node {
    pub fn start(server: Server, workers: usize, port: u16) -> anyhow::Result<Node> {
        let node = install::ensure("node", "nodejs")?;
        let dir = TempDir::new(server.name())?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.0.join(name), text).with_context(|| format!("writing {name} for {server}"))
        };
        let mut cmd = Command::new(node);
        cmd.env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("WORKERS", workers.to_string())
            .current_dir(&dir.0);
        let policy = match server {
            Server::NodeSeed => {
                write("seed-master.js", SEED_MASTER)?;
                write("seed-worker.js", SEED_WORKER)?;
                cmd.arg(dir.0.join("seed-master.js"));
                None
            }
            Server::NodeNone | Server::NodeRr => {
                write("cluster.js", CLUSTER)?;
                let policy = if server == Server::NodeRr { "rr" } else { "none" };
                cmd.arg(dir.0.join("cluster.js"))
                    .env("NODE_CLUSTER_SCHED_POLICY", policy);
                Some(policy)
            }
            _ => bail!("{server} is not a Node.js server"),
        };
        // SIGTERM: the master stops its workers and exits.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = proc.wait_line(deadline, "ready <host>:<port>", |l| l.starts_with("ready "))?;
        let addr: SocketAddr = ready["ready ".len()..]
            .trim()
            .parse()
            .map_err(|_| unexpected(server, &format!("cannot read the address in '{ready}'")))?;
        if let Some(want) = policy {
            let line = proc.wait_line(deadline, "policy", |l| l.starts_with("policy "))?;
            let got = line["policy ".len()..].trim();
            if got != want {
                bail!("{server}: Node runs the cluster with policy '{got}', not '{want}'");
            }
        }
        let mut pids: Vec<i32> = proc
            .seen
            .iter()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["worker", pid, "listening"] => pid.parse().ok(),
                _ => None,
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        if pids.len() != workers {
            bail!(
                "{server}: {} workers said they were listening before 'ready', expected {workers}",
                pids.len()
            );
        }
        Ok(Node {
            server,
            proc,
            addr,
            workers: pids,
            _dir: dir,
        })
    }
}

impl Started for Node {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn workers(&self) -> Vec<i32> {
        self.workers.clone()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        self.proc.check_alive()
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        let status = self.proc.stop(libc::SIGTERM, STOP_GRACE)?;
        let own: BTreeMap<i32, Own> = self.proc.seen.iter().filter_map(|l| parse_count_line(l)).collect();
        let server = self.server;
        for pid in &self.workers {
            if !own.contains_key(pid) {
                bail!(
                    "{server}: worker {pid} exited without reporting its counts ({status}); {}",
                    self.proc.stderr_tail()
                );
            }
        }
        if let Some(stranger) = own.keys().find(|p| !self.workers.contains(p)) {
            bail!("{server}: worker {stranger} reported counts but never said it was listening");
        }
        Ok(own)
    }
}
