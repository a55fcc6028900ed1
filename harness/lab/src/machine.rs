//! What the harness reads off the machine, and the one setting it changes.
//!
//! meta.json records what a reader needs to trust or reproduce a result
//! (the kernel, the CPUs, the sysctls that shape accept behaviour, the
//! harness version and git revision, the command line); [`meta`] fills it
//! in. [`MigrateReq`] sets net.ipv4.tcp_migrate_req for a run and puts it
//! back, whatever ended the run.

use std::fs;
use std::io;

use records::Meta;
use serde_json::Value;

/// Sysctls that shape connection handling on loopback (all of them per
/// network namespace).
pub const SYSCTLS: [&str; 8] = [
    "net.ipv4.tcp_syncookies",
    "net.core.somaxconn",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_migrate_req",
];

/// meta.json of a run (or a sweep) started at `started_at_utc`, with its
/// `parameters`.
pub fn meta(started_at_utc: String, parameters: Value) -> Meta {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Meta {
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: env!("HARNESS_GIT_REVISION").to_string(),
        command_line: std::env::args().collect(),
        started_at_utc,
        kernel_release: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        cpu_count: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu_model: cpu_model(&cpuinfo),
        sysctls: SYSCTLS
            .iter()
            .map(|name| (name.to_string(), sysctl(name).map(Value::String).unwrap_or(Value::Null)))
            .collect(),
        parameters,
        netns: None,
        loadgen_cpu_ms: None,
        harness_peak_rss_kib: sys::self_peak_rss_kib(),
    }
}

/// A sysctl's value as the calling thread's namespace has it.
pub fn sysctl(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    fs::read_to_string(path)
        .ok()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Where the kernel's switch lives: whether closing a listening socket of
/// an SO_REUSEPORT group moves its queued connections to another socket of
/// the group (Linux 5.14) instead of resetting them.
const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// net.ipv4.tcp_migrate_req as it is now, if the kernel has it.
pub fn migrate_req() -> Option<bool> {
    std::fs::read_to_string(MIGRATE_REQ).ok().map(|v| v.trim() != "0")
}

/// Sets net.ipv4.tcp_migrate_req for one run and puts the old value back
/// when dropped, whatever ended the run (a SIGKILL of the harness is the one
/// case that leaves it set). The setting is the machine's, so two harness
/// processes must not change it at once: each holds [`MIGRATE_LOCK`] while
/// its run has it changed, and another waits for it.
pub struct MigrateReq {
    old: String,
    _lock: std::os::fd::OwnedFd,
}

/// The lock file of [`MigrateReq`].
pub const MIGRATE_LOCK: &str = "/tmp/.harness-tcp-migrate-req.lock";

impl MigrateReq {
    pub fn set(on: bool) -> io::Result<MigrateReq> {
        let lock = sys::lock_file(std::path::Path::new(MIGRATE_LOCK))
            .map_err(|e| io::Error::new(e.kind(), format!("locking {MIGRATE_LOCK}: {e}")))?;
        let old = std::fs::read_to_string(MIGRATE_REQ)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {MIGRATE_REQ}: {e}")))?;
        std::fs::write(MIGRATE_REQ, if on { "1" } else { "0" })
            .map_err(|e| io::Error::new(e.kind(), format!("setting {MIGRATE_REQ}: {e}")))?;
        Ok(MigrateReq { old, _lock: lock })
    }
}

impl Drop for MigrateReq {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(MIGRATE_REQ, self.old.trim()) {
            eprintln!("harness: could not restore {MIGRATE_REQ} to {}: {e}", self.old.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_line() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n"),
            "Some CPU @ 2GHz"
        );
        assert_eq!(cpu_model(""), "unknown");
    }

    #[test]
    fn meta_has_the_sysctls() {
        let m = meta("t".into(), Value::Null);
        let json: Value = serde_json::from_slice(&m.to_json().unwrap()).unwrap();
        for k in SYSCTLS {
            assert!(json["sysctls"].get(k).is_some(), "{k}");
        }
        assert!(json["kernel_release"].as_str().unwrap().contains('.'));
        let back: Meta = serde_json::from_slice(&m.to_json().unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
