//! nginx with 4 workers in its three accept configurations, from the
//! template `scripts/nginx/nginx.conf.in`: `accept_mutex off` (EPOLLEXCLUSIVE
//! on Linux 4.5+), `accept_mutex on`, and `listen ... reuseport`.
//!
//! Every response carries `X-Worker: $pid`, and every request is written to
//! the access log as `$pid $connection_requests`: that log is nginx's own
//! count (requests: lines per pid; connections: lines whose request is the
//! connection's first). nginx is stopped with SIGQUIT (graceful), so every
//! request is logged before the log is read.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::process::{self, ServerProcess};
use super::{free_port, install, Own, Server, Started, TempDir, START_TIMEOUT, STOP_GRACE};
use fleet::introspect;

pub const TEMPLATE: &str = include_str!("../../../../scripts/nginx/nginx.conf.in");

pub struct Nginx {
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    dir: TempDir,
}

/// The configuration for `server` with `workers` workers on `port`, files
/// under `prefix`.
pub fn config(server: Server, workers: usize, port: u16, prefix: &str) -> anyhow::Result<String> {
    let (mutex, reuseport) = match server {
        Server::NginxExclusive => ("off", ""),
        Server::NginxMutex => ("on", ""),
        Server::NginxReuseport => ("off", " reuseport"),
        _ => bail!("{server} is not an nginx configuration"),
    };
    Ok(TEMPLATE
        .replace("@PREFIX@", prefix)
        .replace("@PORT@", &port.to_string())
        .replace("@WORKERS@", &workers.to_string())
        .replace("@ACCEPT_MUTEX@", mutex)
        .replace("@REUSEPORT@", reuseport))
}

impl Nginx {
    pub fn start(server: Server, workers: usize, port: u16) -> anyhow::Result<Nginx> {
        let nginx = install::ensure("nginx", "nginx")?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        let prefix = dir.0.to_str().context("the temporary directory's path is not UTF-8")?;
        let conf = dir.0.join("nginx.conf");
        std::fs::write(&conf, config(server, workers, port, prefix)?).context("writing nginx.conf")?;
        let args = |cmd: &mut Command| {
            cmd.arg("-p")
                .arg(&dir.0)
                .arg("-e")
                .arg(dir.0.join("error.log"))
                .arg("-c")
                .arg(&conf);
        };
        let mut test = Command::new(&nginx);
        args(&mut test);
        test.arg("-t");
        process::output(test, "nginx -t")?;
        let mut cmd = Command::new(&nginx);
        args(&mut cmd);
        // SIGTERM: nginx's fast shutdown, which stops the workers too.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        let pids = loop {
            crate::interrupt::check("waiting for nginx to start")?;
            proc.check_alive()
                .map_err(|e| e.context(error_log(&dir)))
                .context("starting nginx")?;
            let kids = introspect::children_of(proc.pid());
            // A bare connect, without a request, leaves no line in the log.
            if kids.len() == workers && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break kids;
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not start {workers} workers on {addr} within {START_TIMEOUT:?} ({} running); {}",
                    kids.len(),
                    error_log(&dir)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Nginx {
            proc,
            addr,
            workers: pids,
            dir,
        })
    }
}

/// The end of nginx's error log, for error messages.
fn error_log(dir: &TempDir) -> String {
    dir.log_tail("error.log")
}

/// Counts per pid from access-log lines `$pid $connection_requests`.
pub fn parse_access_log(text: &str) -> anyhow::Result<BTreeMap<i32, Own>> {
    super::pid_log(text, 1)
}

impl Started for Nginx {
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
        // SIGQUIT: graceful, every request in flight is finished and logged.
        let status = self.proc.stop(libc::SIGQUIT, STOP_GRACE)?;
        if !status.success() {
            bail!("nginx exited with {status}; {}", error_log(&self.dir));
        }
        let log = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        let mut own = parse_access_log(&log)?;
        for pid in &self.workers {
            own.entry(*pid).or_default();
        }
        if let Some(stranger) = own.keys().find(|p| !self.workers.contains(p)) {
            bail!("nginx's access log names pid {stranger}, which is not one of its workers");
        }
        Ok(own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_counts_requests_and_first_requests() {
        let own = parse_access_log("10 1\n10 2\n11 1\n10 1\n").unwrap();
        assert_eq!(
            own[&10],
            Own {
                connections: 2,
                requests: 3
            }
        );
        assert_eq!(
            own[&11],
            Own {
                connections: 1,
                requests: 1
            }
        );
        assert!(parse_access_log("10\n").unwrap_err().to_string().contains("line 1"));
        assert!(parse_access_log("10 x\n").is_err());
    }

    #[test]
    fn config_fills_every_placeholder() {
        for s in [Server::NginxExclusive, Server::NginxMutex, Server::NginxReuseport] {
            let c = config(s, 4, 8123, "/tmp/x").unwrap();
            for p in ["@PREFIX@", "@PORT@", "@WORKERS@", "@ACCEPT_MUTEX@", "@REUSEPORT@"] {
                assert!(!c.contains(p), "{s}: {p} left in {c}");
            }
            let listen = c.lines().find(|l| l.trim_start().starts_with("listen ")).unwrap();
            assert!(listen.contains("127.0.0.1:8123"), "{listen}");
            assert_eq!(
                listen.contains("reuseport"),
                s == Server::NginxReuseport,
                "{s}: {listen}"
            );
            let mutex_on = c.lines().any(|l| l.trim() == "accept_mutex on;");
            assert_eq!(mutex_on, s == Server::NginxMutex, "{s}");
        }
        assert!(config(Server::NodeRr, 4, 1, "/").is_err());
    }
}
