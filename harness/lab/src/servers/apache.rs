//! Apache 2.4 with 4 processes under mpm_prefork or mpm_event, from a
//! configuration of the harness's own in the run's private directory (its
//! own ServerRoot, PidFile, Mutex and runtime directory: the system's
//! /etc/apache2 and its service are never touched), in the foreground
//! (`-DFOREGROUND`).
//!
//! With one `Listen`, neither MPM takes the accept mutex: prefork's
//! children block in accept(2) on the shared socket (the kernel wakes one
//! waiter), event's listener threads each poll it in their own epoll set.
//! prefork runs exactly 4 servers and may spawn no more (`ServerLimit 4`,
//! `MaxRequestWorkers 4`); event runs 4 processes of 16 threads.
//!
//! Apache cannot put its pid in a header by configuration (mod_headers has
//! no pid), so a few lines of mod_lua answer every request: `hello apache`
//! with `x-worker: <pid>` (read from /proc/self/stat). Apache's own count is
//! its access log, `%P %{harness_first}n` for every request: the process,
//! and 1 for the first request of a connection (a note the handler sets,
//! from a Lua state that lives as long as the connection: `%k` cannot tell,
//! as it logs 0 both for a connection's first request and for a second
//! request that closes it). It is stopped with SIGWINCH (graceful stop), so
//! every request is logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use anyhow::{bail, Context};

use super::process::{self, ServerProcess};
use super::{free_port, install, Own, Server, Started, TempDir, STOP_GRACE};

/// Where Debian keeps Apache's modules.
const MODULES: &str = "/usr/lib/apache2/modules";

/// The handler that answers every request.
const APP_LUA: &str = "\
-- Written by the harness for one run: the smallest answer, naming its worker.
function handle(r)
    local f = io.open(\"/proc/self/stat\")
    local pid = f:read(\"*n\")
    f:close()
    -- One Lua state per connection (LuaScope conn): its first request
    -- finds `served` unset.
    r.notes[\"harness_first\"] = served and \"0\" or \"1\"
    served = true
    r.content_type = \"text/plain\"
    r.headers_out[\"x-worker\"] = tostring(pid)
    r:puts(\"hello apache\\n\")
    return apache2.OK
end
";

pub struct Apache {
    proc: ServerProcess,
    addr: SocketAddr,
    workers: Vec<i32>,
    dir: TempDir,
}

/// The configuration for `server` with `workers` processes on `port`, its
/// files under `root`.
pub fn config(server: Server, workers: usize, port: u16, root: &str) -> anyhow::Result<String> {
    let mpm = match server {
        Server::ApachePrefork => format!(
            "LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so\n\
             StartServers {workers}\n\
             ServerLimit {workers}\n\
             MaxRequestWorkers {workers}\n\
             MinSpareServers 1\n\
             MaxSpareServers {workers}\n"
        ),
        Server::ApacheEvent => format!(
            "LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
             StartServers {workers}\n\
             ServerLimit {workers}\n\
             ThreadLimit 16\n\
             ThreadsPerChild 16\n\
             MaxRequestWorkers {}\n\
             MinSpareThreads 1\n\
             MaxSpareThreads {}\n",
            16 * workers,
            16 * workers
        ),
        _ => bail!("{server} is not an Apache configuration"),
    };
    Ok(format!(
        "# Written by the harness for one run.\n\
         ServerRoot {root}\n\
         ServerName localhost\n\
         {mpm}\
         MaxConnectionsPerChild 0\n\
         LoadModule lua_module {MODULES}/mod_lua.so\n\
         LoadModule authn_core_module {MODULES}/mod_authn_core.so\n\
         LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
         User www-data\n\
         Group www-data\n\
         Listen 127.0.0.1:{port}\n\
         PidFile {root}/apache2.pid\n\
         DefaultRuntimeDir {root}\n\
         Mutex file:{root} default\n\
         ErrorLog {root}/error.log\n\
         LogFormat \"%P %{{harness_first}}n\" harness\n\
         CustomLog {root}/access.log harness\n\
         KeepAlive On\n\
         MaxKeepAliveRequests 0\n\
         GracefulShutdownTimeout 5\n\
         <Location />\n\
         \x20   Require all granted\n\
         </Location>\n\
         LuaScope conn\n\
         LuaMapHandler ^/ {root}/app.lua handle\n"
    ))
}

impl Apache {
    pub fn start(server: Server, workers: usize, port: u16) -> anyhow::Result<Apache> {
        let apache = install::ensure("apache2", "apache2")?;
        let dir = TempDir::new(server.name())?;
        let port = if port == 0 { free_port()? } else { port };
        let root = dir.0.to_str().context("the temporary directory's path is not UTF-8")?;
        std::fs::write(dir.0.join("app.lua"), APP_LUA).context("writing app.lua")?;
        let conf = dir.0.join("apache2.conf");
        std::fs::write(&conf, config(server, workers, port, root)?).context("writing apache2.conf")?;
        let mut test = Command::new(&apache);
        test.arg("-t").arg("-f").arg(&conf);
        process::output(test, "apache2 -t")?;
        let mut cmd = Command::new(&apache);
        cmd.arg("-DFOREGROUND").arg("-f").arg(&conf).current_dir(&dir.0);
        // SIGTERM: Apache's stop, which stops the children too.
        let mut proc = ServerProcess::spawn(server.name(), cmd, libc::SIGTERM)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let pids = super::wait_for_forked_workers(&mut proc, "Apache", workers, addr, |_| error_log(&dir))?;
        Ok(Apache {
            proc,
            addr,
            workers: pids,
            dir,
        })
    }
}

/// The end of Apache's error log, for error messages.
fn error_log(dir: &TempDir) -> String {
    dir.log_tail("error.log")
}

impl Started for Apache {
    super::started_from_fields!();

    fn stop(mut self: Box<Self>) -> anyhow::Result<BTreeMap<i32, Own>> {
        // SIGWINCH: graceful stop, every request in flight finished and logged.
        let status = self.proc.stop(libc::SIGWINCH, STOP_GRACE)?;
        if !status.success() {
            bail!("Apache exited with {status}; {}", error_log(&self.dir));
        }
        let log = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        // 1: the connection's first request.
        super::own_of_workers("Apache", super::pid_log(&log, 1)?, &self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sets_each_mpm_and_no_system_path() {
        for s in [Server::ApachePrefork, Server::ApacheEvent] {
            let c = config(s, 4, 8123, "/tmp/x").unwrap();
            assert!(c.contains("Listen 127.0.0.1:8123"), "{c}");
            assert_eq!(c.contains("mod_mpm_prefork"), s == Server::ApachePrefork, "{c}");
            assert_eq!(c.contains("mod_mpm_event"), s == Server::ApacheEvent, "{c}");
            assert!(c.contains("ServerLimit 4\n"), "{c}");
            assert!(!c.contains("/etc/apache2"), "{c}");
            assert_eq!(c.matches("Listen ").count(), 1, "one Listen: no accept mutex");
        }
        assert!(config(Server::NodeRr, 4, 1, "/").is_err());
    }
}
