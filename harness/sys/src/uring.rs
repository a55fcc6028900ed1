//! io_uring: one ring with a multishot accept, for the io-uring model.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::owned;

/// One completion of an [`AcceptRing`]'s multishot accept.
#[derive(Debug)]
pub struct Accepted {
    /// The new connection (blocking, CLOEXEC), or why the accept failed.
    pub conn: io::Result<OwnedFd>,
    /// IORING_CQE_F_MORE: the accept stays armed. Without it the request has
    /// ended and must be submitted again.
    pub more: bool,
}

/// An io_uring with one multishot accept (IORING_OP_ACCEPT with
/// IORING_ACCEPT_MULTISHOT, Linux 5.19) on a listening socket: one
/// submission, then a completion for every connection it accepts.
///
/// Plain ring set-up (no SQPOLL, no DEFER_TASKRUN): the kernel runs the
/// accept as task work of the process that owns the ring, as liburing's
/// `io_uring_queue_init(entries, &ring, 0)` does.
pub struct AcceptRing {
    ring: io_uring::IoUring,
}

/// user_data of the multishot accept, and of a cancel of it.
const ACCEPT_TAG: u64 = 0;
const CANCEL_TAG: u64 = 1;

impl AcceptRing {
    /// A ring whose completion queue holds `cq_entries` (a multishot accept
    /// posts one completion per connection; if the queue overflows the kernel
    /// keeps them, NODROP, but ends the multishot request).
    /// io_uring_setup fails with EPERM or ENOSYS where the kernel or a
    /// sandbox refuses io_uring (kernel.io_uring_disabled, seccomp).
    pub fn new(cq_entries: u32) -> io::Result<AcceptRing> {
        let ring = io_uring::IoUring::builder().setup_cqsize(cq_entries).build(4)?;
        Ok(AcceptRing { ring })
    }

    /// Submits a multishot accept on `listener` (accepted sockets get
    /// SOCK_CLOEXEC and stay blocking). Completions of a request the kernel
    /// refuses at once (EINVAL for the multishot flag before Linux 5.19) are
    /// already in the queue when this returns.
    pub fn arm(&mut self, listener: BorrowedFd<'_>) -> io::Result<()> {
        let entry = io_uring::opcode::AcceptMulti::new(io_uring::types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ACCEPT_TAG);
        // SAFETY: an accept without an address buffer carries no pointer into
        // our memory, so nothing the kernel writes can dangle; the descriptor
        // is resolved (and a reference to its file taken) at submission.
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.ring.submit()?;
        Ok(())
    }

    /// Waits until at least one completion is there (at once if one already
    /// is), or a signal came (not an error: the caller looks at the queue and
    /// at why it was woken).
    pub fn wait(&self) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Asks the kernel to end the multishot accept: its last completion
    /// (without IORING_CQE_F_MORE; ECANCELED, unless it ended already) comes
    /// after every connection it took. The cancel's own completion is not
    /// passed on by [`AcceptRing::drain`].
    pub fn cancel(&mut self) -> io::Result<()> {
        let entry = io_uring::opcode::AsyncCancel::new(ACCEPT_TAG)
            .build()
            .user_data(CANCEL_TAG);
        // SAFETY: a cancel carries no pointer into our memory, only the
        // user_data of the request to cancel.
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.ring.submit()?;
        Ok(())
    }

    /// Moves every completion now in the queue into `out`, each accepted
    /// descriptor wrapped in an `OwnedFd` at once.
    pub fn drain(&mut self, out: &mut Vec<Accepted>) {
        for cqe in self.ring.completion() {
            if cqe.user_data() == CANCEL_TAG {
                continue;
            }
            let res = cqe.result();
            out.push(Accepted {
                conn: if res >= 0 {
                    // A descriptor the kernel has just installed in this
                    // process's table for the accepted connection.
                    Ok(owned(res))
                } else {
                    Err(io::Error::from_raw_os_error(-res))
                },
                more: io_uring::cqueue::more(cqe.flags()),
            });
        }
    }

    /// The ring's own descriptor.
    pub fn raw(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}
