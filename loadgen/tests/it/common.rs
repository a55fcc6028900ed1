//! Helpers shared by the load generator's tests.

use std::sync::{Mutex, MutexGuard};

/// Holds the lock that makes the tests that measure run one at a time, so
/// that two of them do not share the two cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
