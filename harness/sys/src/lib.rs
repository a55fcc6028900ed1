//! `sys`: every libc call of the workspace, and every `unsafe` block.
//!
//! Why it exists: the harness forks fleets, passes descriptors, mmaps shared
//! counters, drives io_uring and catches signals, and its load generator
//! makes six syscalls per connection. All of that goes through thin wrappers
//! here, each `unsafe` block with a `// SAFETY:` note, so every other crate of
//! the workspace can say `#![deny(unsafe_code)]`. Callers get `io::Result`
//! (errno turned into `io::Error` in one place) and `OwnedFd`s, wrapped the
//! moment a descriptor exists, so none is ever left without an owner.
//!
//! One module per kind of resource: [`net`] (sockets, SCM_RIGHTS, classic
//! BPF), [`epoll`], [`process`] (fork, signals, limits), [`mem`] (shared
//! memory), [`time`], [`uring`], [`netns`] (network namespaces), [`diag`]
//! (sock_diag: the kernel's view of listening sockets), [`bpf`] (bpf(2):
//! eBPF programs and maps, with the verifier's log) and [`perf`]
//! (perf_event_open: counters on a thread, tracepoints). Everything but
//! `diag` and `perf` is also re-exported at the top.

pub mod bpf;
pub mod diag;
pub mod epoll;
pub mod mem;
pub mod net;
pub mod netns;
pub mod perf;
pub mod process;
pub mod time;
pub mod uring;

pub use bpf::*;
pub use epoll::*;
pub use mem::*;
pub use net::*;
pub use netns::*;
pub use process::*;
pub use time::*;
pub use uring::*;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Turns a libc return value into `io::Result`, reading errno on -1.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`cvt`] for calls returning `ssize_t`.
pub(crate) fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Wraps a descriptor that a successful syscall just returned.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was returned by a successful syscall that creates a new
    // descriptor, so nothing else owns it yet.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
