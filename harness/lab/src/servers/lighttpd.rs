//! lighttpd 1.4 with `server.max-worker = 4`: the master binds the socket
//! and forks 4 workers, which inherit it and each wait for it in their own
//! event loop (a herd on one socket), in the foreground (`-D`).
//!
//! lighttpd keeps no per-worker count and cannot name its worker in a
//! response by configuration, so a few lines of Lua run by mod_magnet
//! (Debian's lighttpd-modules-lua) answer every request: `hello lighttpd`
//! with `x-worker: <pid>` (from /proc/self/stat), and the pid in the
//! request's environment, which the access log writes (`req pid:<pid>`).
//! That log is the count the workers keep of themselves here; the kernel's
//! attribution (`--attribute kernel`) needs neither. Keep-alive is off
//! (`server.max-keep-alive-requests = 0`), so a connection is a request:
//! runs need `--requests-per-conn 1`. lighttpd buffers its access log until
//! it stops, and SIGINT stops it gracefully, so every request is written.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use anyhow::{bail, Context};

use super::process::{self, ServerProcess};
use super::{free_port, install, Own, Server, Started, TempDir, STOP_GRACE};

/// lighttpd's Lua module, and the Debian package that has it.
pub const MAGNET: &str = "/usr/lib/lighttpd/mod_magnet.so";
pub const MAGNET_PACKAGE: &str = "lighttpd-modules-lua";

/// The start of a request's access-log line.
const REQ: &str = "req pid:";

/// The script that answers every request.
const APP_LUA: &str = "\
-- Written by the harness for one run: the smallest answer, naming its worker.
local f = io.open(\"/proc/self/stat\")
local pid = tostring(f:read(\"*n\"))
f:close()
lighty.r.req_env[\"harness_pid\"] = pid
lighty.r.resp_header[\"x-worker\"] = pid
lighty.r.resp_header[\"Content-Type\"] = \"text/plain\"
lighty.r.resp_body:set(\"hello lighttpd\\n\")
return 200
";

pub struct Lighttpd {
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    dir: TempDir,
}

/// The configuration with `workers` workers on `port`, files under `root`.
pub fn config(workers: usize, port: u16, root: &str) -> String {
    format!(
        "# Written by the harness for one run.\n\
         server.modules = (\"mod_magnet\", \"mod_accesslog\")\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.document-root = \"{root}\"\n\
         server.errorlog = \"{root}/error.log\"\n\
         server.pid-file = \"{root}/lighttpd.pid\"\n\
         server.max-worker = {workers}\n\
         server.max-keep-alive-requests = 0\n\
         magnet.attract-raw-url-to = (\"{root}/app.lua\")\n\
         accesslog.filename = \"{root}/access.log\"\n\
         accesslog.format = \"{REQ}%{{harness_pid}}e\"\n"
    )
}

impl Lighttpd {
    pub fn start(server: Server, workers: usize, port: u16) -> anyhow::Result<Lighttpd> {
        let lighttpd = install::ensure("lighttpd", "lighttpd")?;
        install::ensure_file(MAGNET, MAGNET_PACKAGE)?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        let root = dir.0.to_str().context("the temporary directory's path is not UTF-8")?;
        std::fs::write(dir.0.join("app.lua"), APP_LUA).context("writing app.lua")?;
        let conf = dir.0.join("lighttpd.conf");
        std::fs::write(&conf, config(workers, port, root)).context("writing lighttpd.conf")?;
        let mut test = Command::new(&lighttpd);
        test.arg("-tt").arg("-f").arg(&conf);
        process::output(test, "lighttpd -tt")?;
        let mut cmd = Command::new(&lighttpd);
        cmd.arg("-D").arg("-f").arg(&conf).current_dir(&dir.0);
        // SIGTERM: lighttpd's immediate stop, which stops the workers too.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let pids = super::wait_for_forked_workers(&mut proc, "lighttpd", workers, addr, |_| dir.log_tail("error.log"))?;
        Ok(Lighttpd {
            proc,
            addr,
            workers: pids,
            dir,
        })
    }
}

/// Counts per pid from the access log's lines `req pid:<pid>`: each is a
/// connection and its one request.
pub fn parse_access_log(text: &str) -> anyhow::Result<BTreeMap<i32, Own>> {
    super::one_request_per_line(text, "lighttpd's access log", |l| {
        l.strip_prefix(REQ)?.trim().parse().ok()
    })
}

impl Started for Lighttpd {
    super::started_from_fields!();

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        // SIGINT: graceful, the workers finish and flush the access log.
        // The master exits before its workers are done: they are waited for
        // (gone, or zombies), or the stop would kill them mid-flush.
        sys::kill(self.proc.pid(), libc::SIGINT)?;
        super::wait_gone(&self.workers, STOP_GRACE)?;
        let status = self.proc.stop(libc::SIGINT, STOP_GRACE)?;
        if !status.success() {
            bail!("lighttpd exited with {status}; {}", self.dir.log_tail("error.log"));
        }
        let log = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        super::own_of_workers("lighttpd", parse_access_log(&log)?, &self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_workers_and_no_keep_alive() {
        let c = config(4, 8123, "/tmp/x");
        assert!(c.contains("server.max-worker = 4\n"), "{c}");
        assert!(c.contains("server.port = 8123\n"), "{c}");
        assert!(c.contains("max-keep-alive-requests = 0"), "{c}");
        assert!(c.contains("accesslog.format = \"req pid:%{harness_pid}e\""), "{c}");
    }

    #[test]
    fn access_log_lines_are_connections_by_pid() {
        let own = parse_access_log("req pid:7\nreq pid:7\nreq pid:8\n").unwrap();
        assert_eq!(own[&7].connections, 2);
        assert_eq!(own[&8].requests, 1);
        assert!(parse_access_log("req pid:\n").is_err());
    }
}
