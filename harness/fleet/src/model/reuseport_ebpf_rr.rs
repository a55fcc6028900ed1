//! `reuseport-ebpf-rr`: `reuseport` with an eBPF program that deals the
//! connections round robin over the group's sockets: exact turns, as a
//! dispatcher gives, without the dispatcher's hop (its accept, its
//! SCM_RIGHTS hand-off, its process on the CPU).
//!
//! Why it exists: the kernel's hash spreads connections evenly only on
//! average, and `reuseport-cbpf` can make stateless choices only (a classic
//! BPF program keeps no state between connections). An eBPF program can
//! keep a counter in a map. H2O's TechEmpower entry steers this way.
//!
//! What the kernel does (Linux 6.18 here; SO_ATTACH_REUSEPORT_EBPF exists
//! since 4.5, atomic fetch-and-add in eBPF since 5.12): a SOCKET_FILTER
//! program attached to one socket of the group runs for each SYN that
//! reaches the group; its return value is the index of the socket that
//! gets the connection, one past the end falls back to the hash. The
//! final ACK finds its request socket first and runs no program, so each
//! connection is counted once (a SYN the kernel drops and the client
//! retransmits is counted again).
//!
//! The program (assembled by [`crate::ebpf`], N the group size):
//!
//! ```text
//!     r1 = map                      ; an ARRAY of one u64: the turn
//!     *(u32 *)(r10 - 4) = 0         ; key 0
//!     r2 = r10; r2 += -4
//!     call bpf_map_lookup_elem
//!     if r0 == 0 goto hash          ; (never: the array's one entry exists)
//!     r1 = 1
//!     r1 = atomic_fetch_add((u64 *)(r0 + 0), r1)
//!     r1 %= N
//!     r0 = r1
//!     exit
//! hash:
//!     r0 = N                        ; past the end: the kernel's hash
//!     exit
//! ```
//!
//! The counter is atomic, so SYNs handled at once on both CPUs still take
//! distinct turns. Each worker then blocks in accept(2) on its own socket,
//! as in `reuseport`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use super::{blocking_accept_loop, Listeners, ModelOpts};

use crate::ebpf::{Alu, Asm, Cond, Helper, R0, R1, R10, R2};
use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listeners, addr) = super::reuseport::group(addr, workers, opts)?;
    let first = listeners.first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "reuseport-ebpf-rr needs at least one worker",
        )
    })?;
    let prog = load(workers)?;
    sys::attach_reuseport_ebpf(first.as_fd(), prog.as_fd())?;
    Ok(Listeners::PerWorker { listeners, addr })
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    blocking_accept_loop(listener, ctx)
}

/// Makes the turn counter and loads the program for a group of `workers`
/// sockets. A refusal says why: the errno (EPERM: no CAP_BPF) and the
/// verifier's log.
pub(crate) fn load(workers: usize) -> io::Result<OwnedFd> {
    let n = i32::try_from(workers)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad group size {workers}")))?;
    let map = sys::map_create(sys::BPF_MAP_TYPE_ARRAY, 4, 8, 1)
        .map_err(|e| super::ebpf_refused("making the turn counter (an eBPF array)", e))?;
    let insns = program(map.as_fd(), n).map_err(io::Error::other)?;
    sys::prog_load(sys::BPF_PROG_TYPE_SOCKET_FILTER, 0, &insns, c"Dual MIT/GPL")
        .map_err(|e| super::ebpf_refused("loading the round-robin program", e))
    // The program holds the map; the map's descriptor may close.
}

/// The round-robin program over `n` sockets, the turn in `map`.
pub(crate) fn program(map: std::os::fd::BorrowedFd<'_>, n: i32) -> Result<Vec<sys::Insn>, String> {
    Asm::new()
        .ld_map_fd(R1, map)
        .st_w(R10, -4, 0)
        .mov_reg(R2, R10)
        .alu_imm(Alu::Add, R2, -4)
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, R0, 0, "hash")
        .mov_imm(R1, 1)
        .fetch_add_dw(R0, 0, R1)
        .alu_imm(Alu::Mod, R1, n)
        .mov_reg(R0, R1)
        .exit()
        .label("hash")
        .mov_imm(R0, n)
        .exit()
        .finish()
}

/// Whether this kernel and these privileges let the harness load and attach
/// the program: a throw-away group of two loopback listeners that never
/// has a connection. `harness doctor` and the check before a run ask this.
pub fn check_available() -> io::Result<()> {
    let listeners = super::reuseport::probe_group()?;
    let first = &listeners[0];
    let prog = load(listeners.len())?;
    sys::attach_reuseport_ebpf(first.as_fd(), prog.as_fd()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("SO_ATTACH_REUSEPORT_EBPF refused the round-robin program: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn the_verifier_takes_the_program() {
        if let Err(e) = load(4) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI's machine kind loads eBPF programs: {e}"
            );
            eprintln!("skipped: {e}");
        }
    }

    /// Connections to a group of 3 go 0, 1, 2, 0, 1, 2, ... in turn from
    /// wherever the counter stood (accepted here without a fleet).
    #[test]
    fn a_group_takes_connections_in_turn() {
        let opts = ModelOpts::default();
        let Listeners::PerWorker { listeners, addr } =
            (match prepare(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)), 3, &opts) {
                Ok(l) => l,
                Err(e) => {
                    assert!(std::env::var_os("CI").is_none(), "{e}");
                    eprintln!("skipped: {e}");
                    return;
                }
            })
        else {
            panic!("reuseport-ebpf-rr makes a socket per worker");
        };
        let listeners: Vec<TcpListener> = listeners.into_iter().map(TcpListener::from).collect();
        for l in &listeners {
            l.set_nonblocking(true).unwrap();
        }
        let mut order = Vec::new();
        for _ in 0..9 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"x").unwrap();
            // The connection is in exactly one socket's queue once connect returned.
            let got: Vec<usize> = (0..listeners.len())
                .filter(|&i| match listeners[i].accept() {
                    Ok((mut s, _)) => {
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b).unwrap();
                        true
                    }
                    Err(_) => false,
                })
                .collect();
            assert_eq!(got.len(), 1, "connection {}: in {got:?}", order.len());
            order.push(got[0]);
        }
        let first = order[0];
        let want: Vec<usize> = (0..9).map(|k| (first + k) % 3).collect();
        assert_eq!(order, want);
    }
}
