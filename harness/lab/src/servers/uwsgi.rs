//! uWSGI 2.0 with 4 processes under its master, serving the harness's WSGI
//! app ([`super::WSGI_APP`]) on an HTTP socket, with and without
//! `--thunder-lock`.
//!
//! The master binds the socket and forks the workers, which inherit it.
//! Without the lock every worker waits for the socket in its own event
//! loop and they race for each connection (a herd); with `--thunder-lock` a
//! process-shared mutex serialises accept across the workers, so one at a
//! time waits for the socket. Each answer carries `x-worker: <pid>`; uWSGI's
//! own count is its request log, one line `req pid:<pid>` per request
//! (`--logformat`, in the log file `--logto`). Its HTTP socket closes every
//! connection after its response, so a connection is a request: runs need
//! `--requests-per-conn 1`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use anyhow::{bail, Context};

use super::process::ServerProcess;
use super::{free_port, install, Own, Server, Started, TempDir, STOP_GRACE};

/// uWSGI's Python 3 plugin, and the Debian package that has it.
pub const PYTHON_PLUGIN: &str = "/usr/lib/uwsgi/plugins/python3_plugin.so";
pub const PYTHON_PLUGIN_PACKAGE: &str = "uwsgi-plugin-python3";

/// The start of a request's log line.
const REQ: &str = "req pid:";

pub struct Uwsgi {
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    dir: TempDir,
}

impl Uwsgi {
    pub fn start(server: Server, workers: usize, port: u16) -> anyhow::Result<Uwsgi> {
        let thunder = match server {
            Server::Uwsgi => false,
            Server::UwsgiThunder => true,
            _ => bail!("{server} is not a uWSGI configuration"),
        };
        let uwsgi = install::ensure("uwsgi", "uwsgi")?;
        // Debian's uwsgi is the core alone: the Python plugin is its own package.
        install::ensure_file(PYTHON_PLUGIN, PYTHON_PLUGIN_PACKAGE)?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        std::fs::write(dir.0.join("app.py"), super::WSGI_APP).context("writing app.py")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.0.join("uwsgi.log");
        let mut cmd = Command::new(uwsgi);
        cmd.args(["--plugin", "python3", "--master", "--need-app", "--die-on-term"])
            .args(["--processes", &workers.to_string()])
            .args(["--http-socket", &addr.to_string()])
            .arg("--wsgi-file")
            .arg(dir.0.join("app.py"))
            .args(["--callable", "app", "--logformat", &format!("{REQ}%(pid)")])
            .arg("--logto")
            .arg(&log)
            .current_dir(&dir.0);
        if thunder {
            cmd.arg("--thunder-lock");
        }
        // SIGTERM with --die-on-term: the master stops its workers gracefully.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let pids = super::wait_for_forked_workers(&mut proc, "uWSGI", workers, addr, |_| dir.log_tail("uwsgi.log"))?;
        // uWSGI says whether the lock is on: check it did what was asked.
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let want = if thunder {
            "thunder lock: enabled"
        } else {
            "thunder lock: disabled"
        };
        if !text.lines().any(|l| l.starts_with(want)) {
            bail!(
                "{server}: uWSGI's log does not say '{want}'; {}",
                dir.log_tail("uwsgi.log")
            );
        }
        Ok(Uwsgi {
            proc,
            addr,
            workers: pids,
            dir,
        })
    }
}

/// Counts per pid from the request lines `req pid:<pid>` of uWSGI's log
/// (its other lines are its own messages): each is a connection and its
/// one request.
pub fn parse_request_log(text: &str) -> anyhow::Result<BTreeMap<i32, Own>> {
    let requests: Vec<&str> = text.lines().filter(|l| l.starts_with(REQ)).collect();
    super::one_request_per_line(&requests.join("\n"), "uWSGI's request log", |l| {
        l.strip_prefix(REQ)?.trim().parse().ok()
    })
}

impl Started for Uwsgi {
    super::started_from_fields!();

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        let status = self.proc.stop(libc::SIGTERM, STOP_GRACE)?;
        let text = std::fs::read_to_string(self.dir.0.join("uwsgi.log")).unwrap_or_default();
        if !status.success() {
            bail!("uWSGI exited with {status}; {}", self.dir.log_tail("uwsgi.log"));
        }
        super::own_of_workers("uWSGI", parse_request_log(&text)?, &self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_count_by_pid_and_other_lines_are_skipped() {
        let own = parse_request_log("*** Starting uWSGI ***\nreq pid:10\nreq pid:11\nspawned\nreq pid:10\n").unwrap();
        assert_eq!(
            own[&10],
            Own {
                connections: 2,
                requests: 2
            }
        );
        assert_eq!(own[&11].requests, 1);
        assert!(parse_request_log("req pid:x\n").is_err());
    }
}
