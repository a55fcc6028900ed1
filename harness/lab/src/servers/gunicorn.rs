//! gunicorn 20 with 4 sync workers: the master makes the socket and forks
//! the workers, each of which inherits it, accepts without blocking and
//! waits in select() when there is nothing to take (a herd on one socket).
//!
//! The application is a tiny WSGI app written to the run's private
//! directory ([`super::WSGI_APP`]): it answers `hello wsgi` with `x-worker:
//! <pid>`. gunicorn's own count is its access log, one line per request
//! with `%(p)s` (the worker's pid, as `<pid>`). Sync workers close every
//! connection after its response, so a connection is a request: runs need
//! `--requests-per-conn 1`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use anyhow::{bail, Context};

use super::process::ServerProcess;
use super::{free_port, install, Own, Server, Started, TempDir, STOP_GRACE};

pub struct Gunicorn {
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    dir: TempDir,
}

impl Gunicorn {
    pub fn start(server: Server, workers: usize, port: u16) -> anyhow::Result<Gunicorn> {
        let gunicorn = install::ensure("gunicorn", "gunicorn")?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        std::fs::write(dir.0.join("app.py"), super::WSGI_APP).context("writing app.py")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Command::new(gunicorn);
        cmd.args(["--workers", &workers.to_string(), "--worker-class", "sync"])
            .args(["--bind", &addr.to_string()])
            .arg("--access-logfile")
            .arg(dir.0.join("access.log"))
            .args(["--access-logformat", "%(p)s"])
            .arg("--chdir")
            .arg(&dir.0)
            .arg("app:app")
            .current_dir(&dir.0);
        // SIGTERM: graceful, each worker finishes its request first.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        // Every worker booted: it holds the socket it inherited.
        let pids = super::wait_for_forked_workers(&mut proc, "gunicorn", workers, addr, |p| p.stderr_tail())?;
        Ok(Gunicorn {
            proc,
            addr,
            workers: pids,
            dir,
        })
    }
}

/// Counts per pid from access-log lines `<pid>`: each is a connection and
/// its one request.
pub fn parse_access_log(text: &str) -> anyhow::Result<BTreeMap<i32, Own>> {
    super::one_request_per_line(text, "access.log", |l| {
        l.trim().strip_prefix('<')?.strip_suffix('>')?.parse().ok()
    })
}

impl Started for Gunicorn {
    super::started_from_fields!();

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        let status = self.proc.stop(libc::SIGTERM, STOP_GRACE)?;
        if !status.success() {
            bail!("gunicorn exited with {status}; {}", self.proc.stderr_tail());
        }
        let log = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        super::own_of_workers("gunicorn", parse_access_log(&log)?, &self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines_are_connections_by_pid() {
        let own = parse_access_log("<10>\n<11>\n<10>\n").unwrap();
        assert_eq!(
            own[&10],
            Own {
                connections: 2,
                requests: 2
            }
        );
        assert_eq!(own[&11].connections, 1);
        assert!(parse_access_log("10\n").unwrap_err().to_string().contains("line 1"));
    }
}
