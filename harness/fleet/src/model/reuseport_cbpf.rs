//! `reuseport-cbpf`: `reuseport` with the kernel's choice of socket made by a
//! classic BPF program instead of the 4-tuple hash.
//!
//! Why it exists: the hash spreads connections evenly on average but blindly
//! (it ignores which CPU handled the packet and how busy each worker is).
//! Servers that pin one worker per CPU (Cloudflare's per-CPU steering, the
//! SO_ATTACH_REUSEPORT_CBPF example in the kernel's selftests) attach a
//! program that picks the socket of the CPU that received the SYN, so a
//! connection is accepted and served where its packets are processed.
//!
//! What the kernel does (Linux 6.18 here; the option exists since 4.5):
//!
//! - Sockets with SO_REUSEPORT on one address form a group, an array in the
//!   order they joined. A TCP socket joins when it starts listening (the
//!   kernel adds it when it hashes the listener), so the master's socket i
//!   (opened and put to listen i-th, see `reuseport::group`) is
//!   index i, and `into_worker(i)` hands it to worker i. Closing a member
//!   moves the last one into its slot, so the order holds only while every
//!   socket stays open: it does, since each worker keeps its own until the
//!   end (the master closing its copies after the fork closes no socket).
//! - setsockopt(SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF) on any member attaches
//!   a program to the whole group (replacing any earlier one). We attach it
//!   to socket 0 once all of them listen, before any worker exists; attaching
//!   to the first socket before the others join works too (they join its
//!   group, program included). Both are checked by the tests below.
//! - For each SYN the kernel runs the program over the packet; its return
//!   value is the index of the socket that gets the connection, and a value
//!   past the group's end falls back to the hash. The ancillary loads give
//!   the processor running the program (`SKF_AD_CPU`, raw_smp_processor_id)
//!   and a fresh random number (`SKF_AD_RANDOM`).
//!
//! The two programs (`--steer`), N being the fleet size:
//!
//! ```text
//! cpu:    ld [SKF_AD_OFF + SKF_AD_CPU]      random: ld [SKF_AD_OFF + SKF_AD_RANDOM]
//!         mod #N                                    mod #N
//!         ret a                                     ret a
//! ```
//!
//! On loopback the SYN is processed in the softirq of the CPU whose thread
//! called connect(2) (lo has no RPS by default), so `--steer cpu` sends every
//! connection of a load generator pinned to CPU c to worker c mod N, and with
//! more workers than CPUs the workers past the CPU count get nothing. Each
//! worker then blocks in accept(2) on its own socket, as in `reuseport`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use super::{blocking_accept_loop, Listeners, ModelOpts, Steer};

use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listeners, addr) = super::reuseport::group(addr, workers, opts)?;
    let first = listeners
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "reuseport-cbpf needs at least one worker"))?;
    sys::attach_reuseport_cbpf(first.as_fd(), &program(opts.steer, workers)?)?;
    Ok(Listeners::PerWorker { listeners, addr })
}

/// Whether this kernel lets a SO_REUSEPORT group take both steering
/// programs (SO_ATTACH_REUSEPORT_CBPF, Linux 4.5, with the CPU and random
/// ancillary loads): each is attached to a throw-away group of two loopback
/// listeners that never has a connection. `Unsupported` with a one-line
/// reason if not; `harness doctor` and the check before a run ask this.
pub fn check_available() -> io::Result<()> {
    let listeners = super::reuseport::probe_group()?;
    let first = &listeners[0];
    for steer in [Steer::Cpu, Steer::Random] {
        sys::attach_reuseport_cbpf(first.as_fd(), &program(steer, listeners.len())?).map_err(|e| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("SO_ATTACH_REUSEPORT_CBPF refused the {} program: {e}", steer.name()),
            )
        })?;
    }
    Ok(())
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    blocking_accept_loop(listener, ctx)
}

/// One classic BPF instruction without jumps.
fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The steering program for a group of `workers` sockets: load the CPU
/// number or a random number, reduce it modulo the group size, return it as
/// the socket index.
pub(crate) fn program(steer: Steer, workers: usize) -> io::Result<Vec<libc::sock_filter>> {
    let n = u32::try_from(workers)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad group size {workers}")))?;
    let ancillary = match steer {
        Steer::Cpu => libc::SKF_AD_CPU,
        Steer::Random => libc::SKF_AD_RANDOM,
    };
    Ok(vec![
        // A negative offset selects an ancillary load; `k` holds its bits.
        stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + ancillary) as u32,
        ),
        stmt(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, n),
        stmt(libc::BPF_RET | libc::BPF_A, 0),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelOpts;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    /// A program that sends every connection to socket `index`.
    fn constant(index: u32) -> Vec<libc::sock_filter> {
        vec![stmt(libc::BPF_RET | libc::BPF_K, index)]
    }

    fn localhost() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    /// Opens one connection to `addr` and returns which of `listeners` has it
    /// in its accept queue (each is polled with a non-blocking accept).
    fn who_gets_one(listeners: &[TcpListener], addr: SocketAddr) -> usize {
        let _client = TcpStream::connect(addr).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let got: Vec<usize> = listeners
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.accept().ok().map(|_| i))
                .collect();
            match got[..] {
                [i] => return i,
                [] if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(1)),
                _ => panic!("the connection went to {got:?}"),
            }
        }
    }

    fn nonblocking(fds: Vec<OwnedFd>) -> Vec<TcpListener> {
        fds.into_iter()
            .map(|fd| {
                let l = TcpListener::from(fd);
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect()
    }

    #[test]
    fn check_available_attaches_both_programs() {
        // Classic BPF needs no privilege: every machine kind has it.
        check_available().unwrap();
    }

    #[test]
    fn programs_have_the_expected_shape() {
        for (steer, ad) in [(Steer::Cpu, libc::SKF_AD_CPU), (Steer::Random, libc::SKF_AD_RANDOM)] {
            let p = program(steer, 4).unwrap();
            assert_eq!(p.len(), 3);
            assert_eq!(p[0].code as u32, libc::BPF_LD | libc::BPF_W | libc::BPF_ABS);
            assert_eq!(p[0].k as i32, libc::SKF_AD_OFF + ad);
            assert_eq!(
                (p[1].code as u32, p[1].k),
                (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, 4)
            );
            assert_eq!(p[2].code as u32, libc::BPF_RET | libc::BPF_A);
        }
        // Modulo 0 would be rejected by the kernel's checker: refuse it first.
        assert!(program(Steer::Cpu, 0).is_err());
    }

    /// Index i of the kernel's group is the master's socket i, i.e. worker
    /// i's: a program returning k sends the connection to socket k.
    #[test]
    fn group_index_i_is_socket_i_when_attached_after_all_listen() {
        let (fds, addr) = crate::model::reuseport::group(localhost(), 4, &ModelOpts::default()).unwrap();
        let first = fds[0].try_clone().unwrap();
        let listeners = nonblocking(fds);
        for k in [0u32, 1, 2, 3, 2, 0] {
            // Re-attaching replaces the group's program.
            sys::attach_reuseport_cbpf(first.as_fd(), &constant(k)).unwrap();
            assert_eq!(who_gets_one(&listeners, addr), k as usize, "program returned {k}");
        }
        // Past the end of the group: the kernel falls back to the hash, so
        // some socket still gets it.
        sys::attach_reuseport_cbpf(first.as_fd(), &constant(99)).unwrap();
        assert!(who_gets_one(&listeners, addr) < 4);
    }

    /// Attaching to the first socket before the others exist works as well:
    /// the later sockets join its group and its program.
    #[test]
    fn a_program_attached_to_the_first_socket_covers_sockets_that_join_later() {
        let opts = ModelOpts::default();
        let (mut fds, addr) = crate::model::reuseport::group(localhost(), 1, &opts).unwrap();
        sys::attach_reuseport_cbpf(fds[0].as_fd(), &constant(2)).unwrap();
        for _ in 1..3 {
            fds.push(
                sys::tcp_listener(
                    &addr,
                    sys::ListenOpts {
                        reuseport: true,
                        nonblocking: true,
                        backlog: opts.backlog,
                    },
                )
                .unwrap(),
            );
        }
        let listeners = nonblocking(fds);
        for _ in 0..3 {
            assert_eq!(who_gets_one(&listeners, addr), 2);
        }
    }

    /// The model's own program with `--steer cpu`: a client on CPU c lands on
    /// socket c mod N (the SYN is processed on the connecting CPU).
    #[test]
    fn cpu_steering_follows_the_connecting_cpu() {
        let cpus = sys::cpu_count();
        let workers = 3;
        let opts = ModelOpts {
            steer: Steer::Cpu,
            ..ModelOpts::default()
        };
        let (fds, addr) = crate::model::reuseport::group(localhost(), workers, &opts).unwrap();
        sys::attach_reuseport_cbpf(fds[0].as_fd(), &program(Steer::Cpu, workers).unwrap()).unwrap();
        let listeners = nonblocking(fds);
        let checked = std::thread::scope(|s| {
            s.spawn(|| {
                let mut checked = Vec::new();
                for cpu in 0..cpus.min(4) {
                    if sys::pin_to(&[cpu]).is_err() {
                        continue; // not in this process's CPU set
                    }
                    for _ in 0..5 {
                        assert_eq!(who_gets_one(&listeners, addr), cpu % workers, "client on CPU {cpu}");
                    }
                    checked.push(cpu);
                }
                checked
            })
            .join()
            .unwrap()
        });
        assert!(!checked.is_empty(), "could pin to no CPU");
    }

    #[test]
    fn prepare_returns_one_listening_socket_per_worker_with_the_program() {
        let opts = ModelOpts {
            steer: Steer::Random,
            ..ModelOpts::default()
        };
        let Listeners::PerWorker { listeners, addr } = prepare(localhost(), 4, &opts).unwrap() else {
            panic!("reuseport-cbpf must give one socket per worker");
        };
        assert_eq!(listeners.len(), 4);
        assert_ne!(addr.port(), 0);
        let listeners = nonblocking(listeners);
        let mut seen = [0u32; 4];
        for _ in 0..200 {
            seen[who_gets_one(&listeners, addr)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 0), "random steering missed a socket: {seen:?}");
    }
}
