//! Where a run's network stack is: a namespace of its own, or the host's.
//!
//! Why it exists: the kernel's TCP counters and its per-namespace sysctls
//! (somaxconn, tcp_max_syn_backlog, tcp_syncookies, tcp_migrate_req, ...)
//! are those of a network namespace. Run in the host's, a run's counters
//! are mixed with everything else the machine does, and a sysctl set for it
//! is the machine's. So, as root, each run gets a namespace made for it
//! (`--netns run`, the default): the harness's thread moves into it, brings
//! its loopback up and sets the run's sysctls there; the fleet or server it
//! forks and the load generator's threads it starts are born in it; when
//! the run is over the thread moves back and the namespace goes with its
//! last process. The host's values are never touched, whatever ends the
//! harness. Without root, with `--netns host`, or for a `--target` (a
//! server already running in the host's namespace) the run stays in the
//! host's namespace, and says so; `--tcp-migrate-req` there sets the
//! machine's value for the run and restores it ([`crate::machine::MigrateReq`]).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::machine::{self, MigrateReq};
use crate::spec::{Netns, RunSpec};
use crate::subject::Subject;

/// The namespace a run is in, until it is dropped.
pub struct RunNamespace {
    /// The host's namespace to come back to; `None`: the run is in it.
    host: Option<OwnedFd>,
    /// Why the run is in the host's namespace (when it is).
    why_host: Option<String>,
    /// `--tcp-migrate-req` in the host's namespace: put back when dropped.
    _migrate: Option<MigrateReq>,
}

/// Said once per process: the first run without root.
static TOLD: AtomicBool = AtomicBool::new(false);

impl RunNamespace {
    /// Moves the calling thread into the namespace `spec` runs in (a new
    /// one, as root, unless the spec or its subject says otherwise) and
    /// sets its sysctls there.
    pub fn enter(spec: &RunSpec) -> anyhow::Result<RunNamespace> {
        let why_host = match (&spec.subject, spec.netns) {
            (Subject::Target(_), _) => Some("a --target server runs in the host's namespace"),
            (_, Netns::Host) => Some("--netns host"),
            _ if sys::geteuid() != 0 => Some("not root"),
            _ => None,
        };
        if let Some(why) = why_host {
            if why == "not root" && !TOLD.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "harness: not root: runs share the host's network namespace, so the kernel's counters in kernel.csv are machine-wide"
                );
            }
            let migrate = spec
                .tcp_migrate_req
                .map(MigrateReq::set)
                .transpose()
                .context("net.ipv4.tcp_migrate_req")?;
            return Ok(RunNamespace {
                host: None,
                why_host: Some(why.to_string()),
                _migrate: migrate,
            });
        }
        let host = sys::current_netns().context("opening the host's network namespace")?;
        sys::unshare_netns().context("making the run's network namespace (unshare CLONE_NEWNET)")?;
        // From here the guard brings the thread back, whatever fails.
        let ns = RunNamespace {
            host: Some(host),
            why_host: None,
            _migrate: None,
        };
        sys::loopback_up().context("bringing lo up in the run's network namespace")?;
        for (key, value) in spec.sysctls_in_force() {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, &value).with_context(|| format!("setting {key} = {value} in the run's namespace"))?;
        }
        Ok(ns)
    }

    /// Whether the run has a namespace of its own.
    pub fn own(&self) -> bool {
        self.host.is_some()
    }

    /// `own`, or `host (<why>)`: what meta.json says.
    pub fn mode(&self) -> String {
        match &self.why_host {
            None => "own".to_string(),
            Some(why) => format!("host ({why})"),
        }
    }

    /// The sysctls that shape the result, as the run's namespace has them
    /// now (with any the run set), for meta.json.
    pub fn sysctls(&self, spec: &RunSpec) -> BTreeMap<String, Option<String>> {
        machine::SYSCTLS
            .iter()
            .map(|k| k.to_string())
            .chain(spec.sysctls.keys().cloned())
            .map(|k| {
                let v = machine::sysctl(&k);
                (k, v)
            })
            .collect()
    }
}

impl Drop for RunNamespace {
    fn drop(&mut self) {
        if let Some(host) = self.host.take() {
            if let Err(e) = sys::enter_netns(host.as_fd()) {
                // The harness cannot go on in a dead run's namespace.
                eprintln!("harness: could not return to the host's network namespace: {e}");
                std::process::exit(1);
            }
        }
    }
}
