//! `reuseport-ebpf-least`: `reuseport` with an eBPF program that gives each
//! connection to the worker with the fewest connections steered to it but
//! not yet closed, ties in turn: `dispatch-least`'s choice, made by the
//! kernel at the SYN, with no dispatcher.
//!
//! Why it exists: the hash, and round robin, keep feeding a worker that is
//! slow or stalled; a least-loaded choice starves it. Until now that took a
//! dispatcher process (an accept, an SCM_RIGHTS hand-off and a context
//! switch per connection).
//!
//! What the kernel does (Linux 6.18 here; SK_REUSEPORT programs and
//! REUSEPORT_SOCKARRAY since 4.19, mmap-able arrays since 5.5): an
//! SK_REUSEPORT program attached to the group with SO_ATTACH_REUSEPORT_EBPF
//! (expected attach type BPF_SK_REUSEPORT_SELECT) runs for each SYN and
//! picks a socket with `bpf_sk_select_reuseport(ctx, sockarray, &key, 0)`;
//! if it picks none, the kernel hashes as usual.
//!
//! Two maps, made by the master before the fork:
//!
//! - `load`, an ARRAY of N + 1 u64s with BPF_F_MMAPABLE: entry i counts the
//!   connections steered to worker i and not yet closed; entry N is the
//!   turn, which starts each scan at a different worker so that ties go in
//!   turn. The master mmaps it before forking, so every worker's process
//!   (or thread) shares the mapping: a worker subtracts one with an atomic
//!   instruction on plain memory after each connection it closes, no
//!   syscall (without the mmap each decrement would be a
//!   BPF_MAP_UPDATE_ELEM, about a microsecond and a race with the program's
//!   increment);
//! - `sockets`, a REUSEPORT_SOCKARRAY: entry i is worker i's listening socket.
//!
//! The program, unrolled over the N workers (the harness knows N when it
//! assembles it):
//!
//! ```text
//!     r6 = ctx; r7 = u64::MAX (fewest so far); r8 = 0 (its worker)
//!     r9 = atomic_fetch_add(load[N], 1)          ; the turn
//!     for k in 0..N:
//!         i = (r9 + k) % N
//!         if load[i] < r7: r7 = load[i]; r8 = i  ; strictly fewer: the first in turn wins ties
//!     r0 = bpf_sk_select_reuseport(r6, sockets, &r8, 0)
//!     if r0 == 0: atomic_add(load[r8], 1)        ; counted only if picked
//!     return SK_PASS
//! ```
//!
//! A SYN the kernel drops after the choice (a full accept queue) leaves its
//! count behind, and its retransmission is counted again: the counts are
//! exact while no queue overflows. A replacement worker (`--respawn`,
//! `--rolling-restart`) has no entry: while a worker's socket is gone from
//! the array the kernel falls back to the hash. Each worker blocks in
//! accept(2) on its own socket, as in `reuseport`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::{blocking_accept_loop_then, Listeners, ModelOpts};

use crate::ebpf::{Alu, Asm, Cond, Helper, R0, R1, R10, R2, R3, R4, R6, R7, R8, R9};
use crate::worker::WorkerCtx;

/// The `load` map of the fleet being set up, mmaped: set by [`prepare`] in
/// the master before it forks, read by each worker after (the fork copies
/// the pointer; the mapping is shared).
static LOAD: Mutex<Option<Arc<sys::SharedWords>>> = Mutex::new(None);

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listeners, addr) = super::reuseport::group(addr, workers, opts)?;
    let first = listeners.first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "reuseport-ebpf-least needs at least one worker",
        )
    })?;
    let steering = Steering::load(&listeners, sys::BPF_SK_REUSEPORT_SELECT)?;
    steering.attach(first.as_fd())?;
    Ok(Listeners::PerWorker { listeners, addr })
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let load = LOAD.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mine = load.filter(|l| ctx.index + 1 < l.words().len());
    blocking_accept_loop_then(listener, ctx, || {
        if let Some(load) = &mine {
            // Never below 0: a connection the hash gave it was not counted.
            let _ = load.words()[ctx.index].fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    })
}

/// The program and its maps for one group.
pub(crate) struct Steering {
    pub prog: OwnedFd,
    pub load: Arc<sys::SharedWords>,
}

impl Steering {
    /// Attaches the program to the group of `first` and makes its counts
    /// the ones the workers forked next decrement.
    pub(crate) fn attach(&self, first: BorrowedFd<'_>) -> io::Result<()> {
        sys::attach_reuseport_ebpf(first, self.prog.as_fd())?;
        *LOAD.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&self.load));
        Ok(())
    }

    /// Makes the maps (the sockets of `listeners` in the array, in worker
    /// order), maps `load` and loads the program for `expected_attach_type`
    /// (BPF_SK_REUSEPORT_SELECT, or _SELECT_OR_MIGRATE: the kernel also
    /// runs it to place the connections of a closing socket).
    pub(crate) fn load(listeners: &[OwnedFd], expected_attach_type: u32) -> io::Result<Steering> {
        let n = listeners.len();
        let refused = super::ebpf_refused;
        let load_map = sys::map_create_flags(sys::BPF_MAP_TYPE_ARRAY, 4, 8, n as u32 + 1, sys::BPF_F_MMAPABLE)
            .map_err(|e| refused("making the load counts (an mmap-able eBPF array)", e))?;
        let sockets = sys::map_create(sys::BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, n as u32)
            .map_err(|e| refused("making the socket array (REUSEPORT_SOCKARRAY)", e))?;
        for (i, l) in listeners.iter().enumerate() {
            sys::map_update_u32_u64(sockets.as_fd(), i as u32, l.as_raw_fd() as u64)
                .map_err(|e| refused(&format!("putting worker {i}'s socket into the array"), e))?;
        }
        let load = Arc::new(
            sys::SharedWords::of_bpf_array(load_map.as_fd(), n + 1)
                .map_err(|e| refused("mmapping the load counts", e))?,
        );
        let insns = program(load_map.as_fd(), sockets.as_fd(), n).map_err(io::Error::other)?;
        let prog = sys::prog_load(
            sys::BPF_PROG_TYPE_SK_REUSEPORT,
            expected_attach_type,
            &insns,
            c"Dual MIT/GPL",
        )
        .map_err(|e| refused("loading the least-loaded program", e))?;
        Ok(Steering { prog, load })
    }
}

/// The least-loaded program over `n` workers (see the module's text).
pub(crate) fn program(load: BorrowedFd<'_>, sockets: BorrowedFd<'_>, n: usize) -> Result<Vec<sys::Insn>, String> {
    let n32 = i32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(format!("bad group size {n}"))?;
    let mut a = Asm::new();
    // r0 = &load[key] for the u32 key at r10 - 4; to `pass` if none.
    let lookup = |a: &mut Asm| {
        a.ld_map_fd(R1, load)
            .mov_reg(R2, R10)
            .alu_imm(Alu::Add, R2, -4)
            .call(Helper::MapLookupElem)
            .jmp_imm(Cond::Eq, R0, 0, "pass");
    };
    a.mov_reg(R6, R1).mov_imm(R7, -1).mov_imm(R8, 0);
    // The turn: r9 = fetch_add(load[n], 1).
    a.st_w(R10, -4, n32);
    lookup(&mut a);
    a.mov_imm(R9, 1).fetch_add_dw(R0, 0, R9);
    for k in 0..n32 {
        let next = format!("next{k}");
        // key = (turn + k) % n, kept at r10 - 8 too.
        a.mov_reg(R1, R9)
            .alu_imm(Alu::Add, R1, k)
            .alu_imm(Alu::Mod, R1, n32)
            .stx_w(R10, -4, R1)
            .stx_w(R10, -8, R1);
        lookup(&mut a);
        a.ldx_dw(R1, R0, 0)
            .jmp_reg(Cond::Ge, R1, R7, &next)
            .mov_reg(R7, R1)
            .ldx_w(R8, R10, -8)
            .label(&next);
    }
    // Pick worker r8's socket; count it only if the kernel took the pick.
    a.stx_w(R10, -4, R8)
        .mov_reg(R1, R6)
        .ld_map_fd(R2, sockets)
        .mov_reg(R3, R10)
        .alu_imm(Alu::Add, R3, -4)
        .mov_imm(R4, 0)
        .call(Helper::SkSelectReuseport)
        .jmp_imm(Cond::Ne, R0, 0, "pass");
    lookup(&mut a);
    a.mov_imm(R1, 1).fetch_add_dw(R0, 0, R1);
    a.label("pass").mov_imm(R0, sys::SK_PASS).exit();
    a.finish()
}

/// Whether this kernel and these privileges let the harness load and attach
/// the program: a throw-away group of two loopback listeners that never
/// has a connection. `harness doctor` and the check before a run ask this.
pub fn check_available() -> io::Result<()> {
    for (attach, name) in [
        (sys::BPF_SK_REUSEPORT_SELECT, "SELECT"),
        (sys::BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, "SELECT_OR_MIGRATE"),
    ] {
        let listeners = super::reuseport::probe_group()?;
        let steering = Steering::load(&listeners, attach)?;
        sys::attach_reuseport_ebpf(listeners[0].as_fd(), steering.prog.as_fd()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("SO_ATTACH_REUSEPORT_EBPF refused the least-loaded program for {name}: {e}"),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// Connections to a group of 3 whose workers never close anything go
    /// to each in turn (all tie at first, then the fewest is the next in
    /// turn), and the counts in the mapped array say so; a worker whose
    /// count is lowered gets the next connection.
    #[test]
    fn the_least_loaded_socket_gets_each_connection() {
        let opts = ModelOpts::default();
        let any = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        let (listeners, addr) = super::super::reuseport::group(any, 3, &opts).unwrap();
        let steering = match Steering::load(&listeners, sys::BPF_SK_REUSEPORT_SELECT) {
            Ok(s) => s,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "{e}");
                eprintln!("skipped: {e}");
                return;
            }
        };
        sys::attach_reuseport_ebpf(listeners[0].as_fd(), steering.prog.as_fd()).unwrap();
        let listeners: Vec<TcpListener> = listeners.into_iter().map(TcpListener::from).collect();
        for l in &listeners {
            l.set_nonblocking(true).unwrap();
        }
        let words = steering.load.words();
        let counts = || (0..3).map(|i| words[i].load(Ordering::Acquire)).collect::<Vec<_>>();
        let mut keep = Vec::new();
        let mut took = |listeners: &[TcpListener]| -> usize {
            keep.push(TcpStream::connect(addr).unwrap());
            let got: Vec<usize> = (0..3).filter(|&i| listeners[i].accept().is_ok()).collect();
            assert_eq!(got.len(), 1, "in {got:?}");
            got[0]
        };
        let mut order: Vec<usize> = (0..6).map(|_| took(&listeners)).collect();
        assert_eq!(counts(), [2, 2, 2], "each steered twice: {order:?}");
        order.sort();
        assert_eq!(order, [0, 0, 1, 1, 2, 2]);
        // Worker 1 closed two connections: it is the least loaded.
        words[1].fetch_sub(2, Ordering::AcqRel);
        assert_eq!(took(&listeners), 1);
        assert_eq!(took(&listeners), 1);
        assert_eq!(counts(), [2, 2, 2]);
    }
}
