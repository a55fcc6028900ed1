//! Memory shared between the master and the processes it forks.

use std::io;
use std::sync::atomic::AtomicU64;

/// Anonymous shared memory that survives fork, seen as an array of
/// `AtomicU64` words: written by children, read by the parent. Words are the
/// only view, so nothing but atomics ever touches the mapping, from any
/// process or thread.
pub struct SharedWords {
    ptr: *mut AtomicU64,
    len: usize,
}

impl SharedWords {
    /// `words` zeroed words, page-aligned.
    pub fn new(words: usize) -> io::Result<SharedWords> {
        SharedWords::map(words, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)
    }

    /// The values of an mmap-able BPF ARRAY map (`BPF_F_MMAPABLE`, 8-byte
    /// values) as `words` shared words: what a program reads, the
    /// processes forked afterwards write without a syscall.
    pub fn of_bpf_array(map: std::os::fd::BorrowedFd<'_>, words: usize) -> io::Result<SharedWords> {
        use std::os::fd::AsRawFd;
        SharedWords::map(words, libc::MAP_SHARED, map.as_raw_fd())
    }

    /// A shared, readable and writable mapping of `words` words from
    /// offset 0 of `fd` (-1 with MAP_ANONYMOUS).
    fn map(words: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<SharedWords> {
        let bytes = words.max(1) * std::mem::size_of::<AtomicU64>();
        // SAFETY: a new mapping with no address hint, of an anonymous
        // region or of `fd` from offset 0 (the kernel checks the length
        // against what `fd` has); checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedWords {
            ptr: ptr.cast(),
            len: words.max(1),
        })
    }

    /// Every word of the mapping.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned (so aligned for AtomicU64),
        // zero-filled (all-zero bytes are a valid AtomicU64) and `len` words
        // long; it lives as long as `self`, and AtomicU64 is sound to share
        // between threads, and between processes over a MAP_SHARED mapping.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

// SAFETY: the mapping is only ever accessed through atomics, which are sound
// to use from several threads at once, exactly as from several processes;
// the pointer itself is never reassigned.
unsafe impl Sync for SharedWords {}
// SAFETY: as above; the mapping is not tied to the thread that made it.
unsafe impl Send for SharedWords {}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len * std::mem::size_of::<AtomicU64>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn words_start_at_zero_and_are_shared_with_a_forked_child() {
        let shm = SharedWords::new(300).unwrap();
        assert_eq!(shm.words().len(), 300);
        assert!(shm.words().iter().all(|w| w.load(Relaxed) == 0));
        shm.words()[299].store(7, Relaxed);
        assert_eq!(shm.words()[299].load(Relaxed), 7);
    }
}
