//! What a run checks of the machine before anything starts, in one call:
//! the capabilities it needs ([`crate::doctor::check`]: sock_diag, network
//! namespaces as root, io_uring, classic BPF or eBPF for their models, the
//! kernel's accept counters, a real server that is installed or
//! installable) and the limits and privileges of its settings
//! ([`RunSpec::check_limits`]).
//!
//! Why it exists: the doctor knows the capabilities and reads the run spec
//! to say which a run needs; the spec knows its own settings. Asking both
//! here keeps each of them free of the other.

use crate::spec::RunSpec;
use crate::UsageError;

/// Refuses `spec`, in one line, if this machine cannot run it (not for
/// `--dry-run`). Reads, never changes anything (a capability is tried on
/// something thrown away).
pub fn check(spec: &RunSpec) -> Result<(), UsageError> {
    crate::doctor::check(spec)?;
    spec.check_limits()
}
