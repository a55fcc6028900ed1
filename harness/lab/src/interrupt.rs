//! Ctrl-C and SIGTERM while the harness runs load.
//!
//! Why this exists: with the default action a SIGINT or SIGTERM ends the
//! harness wherever it is, so the run in progress leaves no record at all
//! and a sweep gives no word on what to resume. The commands that run load
//! (`run`, `sweep`, `reproduce`, `external`) therefore catch both signals
//! ([`install`]). The handler only records the signal number
//! (`sys::catch_signals`: an atomic store, async-signal-safe); everything
//! else happens in ordinary code that polls [`interrupted`]:
//!
//! - the load loop (`run::drive`, and a warm-up) sees it within
//!   [`POLL`], sets the load generator's cancel flag so that no new
//!   connection starts and those in flight finish, and the run ends early;
//! - the fleet is torn down as usual (SIGTERM, grace, SIGKILL, reaped);
//! - the run's files are written, atomically as always, marked incomplete:
//!   `complete=false` in `summary.csv` (and its row of a sweep's `runs.csv`),
//!   and its conservation line says "interrupted by SIGINT";
//! - a sweep writes its combined CSVs, says which run was cut short and how
//!   to resume it (`--resume DIR` reruns an incomplete run), and the process
//!   exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM),
//!   as a shell reports a command a signal ended.
//!
//! The same signal a second time takes its default action and ends the
//! harness at once (SA_RESETHAND): a way out of a teardown that hangs. Like
//! a SIGKILL, that leaves no process behind (every worker asked the kernel
//! to kill it when the harness dies, PR_SET_PDEATHSIG) and no half-written
//! file (every result is written to a temporary name and renamed).
//! Workers do not keep these handlers: a forked worker restores the default
//! actions first thing (`sys::default_signals`), so the master's SIGTERM
//! still stops it inside any blocking call.

use std::fmt;
use std::time::Duration;

/// How often a loop that waits (for the load, a fleet, a server) looks at
/// [`interrupted`]: well inside the 200 ms in which a signal must be seen.
pub const POLL: Duration = Duration::from_millis(20);

/// Catches SIGINT and SIGTERM for the rest of the process's life.
pub fn install() -> std::io::Result<()> {
    sys::catch_signals(&[libc::SIGINT, libc::SIGTERM])
}

/// The first SIGINT or SIGTERM caught since [`install`], if any.
pub fn interrupted() -> Option<i32> {
    sys::caught_signal()
}

/// An [`Interrupted`] error if a signal came: for the waits outside the
/// load (a fleet or server starting or stopping, an install, charts), which
/// give up at once and say `what` they were doing.
pub fn check(what: &str) -> Result<(), Interrupted> {
    match interrupted() {
        Some(sig) => Err(Interrupted::new(sig, format!("stopped while {what}"))),
        None => Ok(()),
    }
}

/// `SIGINT`, `SIGTERM`, or `signal N`.
pub fn name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// The exit status of a command ended by `sig`: 128 + its number.
pub fn exit_code(sig: i32) -> u8 {
    u8::try_from(128 + sig.clamp(1, 127)).unwrap_or(u8::MAX)
}

/// The error a command returns when a signal stopped it: the message says
/// what was kept and how to go on; `cli::main` exits with [`exit_code`].
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
    pub message: String,
}

impl Interrupted {
    pub fn new(signal: i32, message: impl Into<String>) -> Interrupted {
        Interrupted {
            signal,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        exit_code(self.signal)
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted by {}: {}", name(self.signal), self.message)
    }
}

impl std::error::Error for Interrupted {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(exit_code(libc::SIGINT), 130);
        assert_eq!(exit_code(libc::SIGTERM), 143);
        assert_eq!(name(libc::SIGINT), "SIGINT");
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(10), "signal 10");
    }

    #[test]
    fn the_error_names_the_signal_and_its_exit_code() {
        let e = Interrupted::new(libc::SIGTERM, "run p000-r00 is incomplete");
        assert_eq!(e.exit_code(), 143);
        assert_eq!(e.to_string(), "interrupted by SIGTERM: run p000-r00 is incomplete");
        let any = anyhow::Error::new(e).context("while sweeping");
        assert!(any.downcast_ref::<Interrupted>().is_some(), "found through context");
    }
}
