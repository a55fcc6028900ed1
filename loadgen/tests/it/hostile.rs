//! The load generator against hostile servers: every failure lands in the
//! right error class within the timeout, and nothing hangs or grows.
//!
//! A real server under test can stall, die mid-response, reset, or answer
//! nonsense; the harness's numbers are only right if each such connection is
//! counted once, in the right class, and a bad server cannot stop a run or
//! make the generator's memory grow. Each test starts a tiny server on
//! 127.0.0.1 (a `std::net::TcpListener` and one thread per connection, for
//! a fixed number of connections; the threads end when told to, or after
//! [`SERVER_LIFETIME`] at the latest, and are joined with a deadline), runs
//! `loadgen::run` with a 1 s timeout, and checks: every connection in the
//! expected class (none completed), `started == completed + errors`, and the
//! run ended in less than timeout + 2 s (the ones that wait for the deadline
//! also took at least the timeout).
//!
//! | server | class |
//! | --- | --- |
//! | half a head, then holds | timeout |
//! | half a head, then closes | malformed |
//! | half a body (10 of 1000 bytes), then holds | timeout |
//! | half a body, then closes | malformed (after a full head too) |
//! | reads all but the request's last byte, closes (RST) | reset |
//! | half a response, then RST | reset |
//! | random bytes (also more than a head may hold), then closes | malformed |
//! | `content-length: 10 GB`, streamed as fast as it can | timeout, RSS growth < 64 MiB |
//! | chunked / EOF-delimited body that never ends | timeout |
//! | never answers (reads the request, holds) | timeout |
//! | nothing listening | refused |
//!
//! `tests/loopback.rs` has the simplest of these (a silent server, a text
//! garbage answer, a short body, a reset before the request is read, a closed
//! port) at a different timeout; these add the cases in between, the
//! streaming ones and the time and memory bounds. The tests run one at a
//! time ([`serial`]): they measure time and memory on a 2-core machine.

use crate::common::serial;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgen::{Config, ErrorClass, Report, Stop};

/// The per-request timeout of these runs.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The longest any server thread lives, whatever happens to the test.
const SERVER_LIFETIME: Duration = Duration::from_secs(20);
/// Connections per run, all in flight at once (one round of the timeout).
const CONNS: usize = 4;

/// What a server's connection threads share.
#[derive(Clone)]
struct Ctx {
    /// Set when the run is over: holding threads let go.
    release: Arc<AtomicBool>,
    /// When every thread gives up, released or not.
    deadline: Instant,
    /// Bytes written by streaming servers.
    sent: Arc<AtomicU64>,
}

impl Ctx {
    fn over(&self) -> bool {
        self.release.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Keeps `s` open (sending nothing) until the run is over.
    fn hold(&self, s: TcpStream) {
        while !self.over() {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(s);
    }

    /// Writes `bytes()` over and over until the peer goes away or the run
    /// is over.
    fn stream(&self, mut s: TcpStream, mut bytes: impl FnMut() -> Vec<u8>) {
        s.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
        while !self.over() {
            match s.write(&bytes()) {
                Ok(n) => {
                    self.sent.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    }
}

type Handler = fn(TcpStream, &Ctx);

struct Server {
    addr: SocketAddr,
    ctx: Ctx,
    done: mpsc::Receiver<usize>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `conns` connections, each with `handler` on its own thread.
    fn spawn(conns: usize, handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Ctx {
            release: Arc::new(AtomicBool::new(false)),
            deadline: Instant::now() + SERVER_LIFETIME,
            sent: Arc::new(AtomicU64::new(0)),
        };
        let (tx, done) = mpsc::channel();
        let c = ctx.clone();
        let thread = std::thread::spawn(move || {
            let mut handlers = Vec::with_capacity(conns);
            while handlers.len() < conns && !c.over() {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let c = c.clone();
                        handlers.push(std::thread::spawn(move || handler(s, &c)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            let accepted = handlers.len();
            for h in handlers {
                let _ = h.join();
            }
            let _ = tx.send(accepted);
        });
        Server {
            addr,
            ctx,
            done,
            thread: Some(thread),
        }
    }

    /// Lets the threads go; waits (bounded) for them; returns how many
    /// connections were accepted and how many bytes were streamed.
    fn finish(mut self) -> (usize, u64) {
        self.ctx.release.store(true, Ordering::Relaxed);
        // Liveness (generous): released threads notice within 10 ms (holding)
        // or one 100 ms write timeout (streaming).
        let accepted = self
            .done
            .recv_timeout(Duration::from_secs(5))
            .expect("the server threads end within 5 s of release");
        self.thread.take().unwrap().join().unwrap();
        (accepted, self.ctx.sent.load(Ordering::Relaxed))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test: let the threads go; they end on their own.
        self.ctx.release.store(true, Ordering::Relaxed);
    }
}

/// Reads the request up to and including the blank line; false if the
/// peer went away first. Bounded by the read timeout and 64 KiB.
fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 64 * 1024 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(
        buf.starts_with(b"GET / HTTP/1.1\r\n"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    true
}

/// Reads the request one byte at a time up to, not including, its last
/// byte: closing then leaves that byte unread, so the kernel sends RST
/// instead of FIN (what SO_LINGER 0 would do, without unsafe code).
fn read_all_but_last_byte(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r") && buf.len() < 64 * 1024 {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(_) => buf.push(b[0]),
        }
    }
    true
}

/// Bytes from a fixed xorshift sequence, never starting like HTTP.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    if let Some(b) = v.first_mut() {
        *b = 0xff;
    }
    v
}

const HALF_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nX-Worker: 1\r\nContent-Len";
const HALF_BODY: &[u8] = b"HTTP/1.1 200 OK\r\nX-Worker: 1\r\nContent-Length: 1000\r\n\r\n0123456789";

/// Runs `CONNS` connections, all at once, against `addr` with [`TIMEOUT`];
/// returns the report and how long the run took.
fn run(addr: SocketAddr) -> (Report, Duration) {
    let mut cfg = Config::new(addr, CONNS, Stop::Connections(CONNS as u64));
    cfg.timeout = TIMEOUT;
    let t = Instant::now();
    let r = loadgen::run(&cfg).expect("the run itself does not fail");
    (r, t.elapsed())
}

/// Every connection failed with `class`, the counts add up, and the run
/// took less than the timeout + 2 s (and, for `Timeout`, at least the
/// timeout: it waited for the deadline, it did not fail early).
///
/// About time, only what holds however the scheduler behaves: a deadline
/// cannot pass before the timeout (so a timed-out connection lasted at
/// least that long, on the run's own clock and on `took`, read around it),
/// the run's clock runs inside `took`, and the upper bound is a liveness
/// bound (a whole second of slack past the deadline and the 50 ms scan).
fn check(name: &str, r: &Report, took: Duration, class: ErrorClass) {
    let n = CONNS as u64;
    assert_eq!(r.scheduled, r.started + r.dropped, "{name}: {r:?}");
    assert_eq!(r.started, r.completed + r.errors.total(), "{name}: {r:?}");
    assert_eq!(
        (r.started, r.completed, r.errors.get(class), r.errors.total()),
        (n, 0, n, n),
        "{name}: every connection should be {class}: {:?}",
        r.errors
    );
    assert!(
        r.per_worker.is_empty(),
        "{name}: nothing attributed: {:?}",
        r.per_worker
    );
    assert!(r.elapsed <= took, "{name}: took {took:?}: {r:?}");
    // Liveness (generous).
    assert!(took < TIMEOUT + Duration::from_secs(2), "{name}: took {took:?}");
    if class == ErrorClass::Timeout {
        assert!(
            r.elapsed >= TIMEOUT,
            "{name}: timed out after {:?}, before the timeout",
            r.elapsed
        );
    }
}

/// Runs against a server with `handler`, checks the class; returns the
/// bytes the server streamed.
fn hostile(name: &str, handler: Handler, class: ErrorClass) -> u64 {
    let server = Server::spawn(CONNS, handler);
    let (r, took) = run(server.addr);
    let (accepted, sent) = server.finish();
    assert_eq!(accepted, CONNS, "{name}: the server saw every connection");
    check(name, &r, took, class);
    sent
}

// ---------------------------------------------------------------- timeouts

#[test]
fn half_a_head_then_silence_times_out() {
    let _s = serial();
    hostile(
        "half head, hold",
        |mut s, c| {
            if read_request(&mut s) && s.write_all(HALF_HEAD).is_ok() {
                c.hold(s);
            }
        },
        ErrorClass::Timeout,
    );
}

#[test]
fn half_a_body_then_silence_times_out() {
    let _s = serial();
    hostile(
        "half body, hold",
        |mut s, c| {
            if read_request(&mut s) && s.write_all(HALF_BODY).is_ok() {
                c.hold(s);
            }
        },
        ErrorClass::Timeout,
    );
}

#[test]
fn a_server_that_reads_the_request_and_never_answers_times_out() {
    let _s = serial();
    hostile(
        "silent",
        |mut s, c| {
            if read_request(&mut s) {
                c.hold(s);
            }
        },
        ErrorClass::Timeout,
    );
}

/// A 10 GB body streamed as fast as the server can: the deadline still
/// ends each connection, and the body is counted, not kept (the process's
/// resident memory grows by less than 64 MiB while it runs).
#[test]
fn a_huge_body_times_out_without_growing_memory() {
    let _s = serial();
    let server = Server::spawn(CONNS, |mut s, c| {
        if read_request(&mut s)
            && s.write_all(b"HTTP/1.1 200 OK\r\nX-Worker: 1\r\nContent-Length: 10000000000\r\n\r\n")
                .is_ok()
        {
            let block = vec![b'x'; 64 * 1024];
            c.stream(s, || block.clone());
        }
    });
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: the run ends within 3 s; 30 s at most.
            for _ in 0..3000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let (r, took) = run(server.addr);
    peak.fetch_max(rss_kib(), Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (accepted, sent) = server.finish();
    assert_eq!(accepted, CONNS);
    check("10 GB body", &r, took, ErrorClass::Timeout);
    // It really was streaming: far more than any buffer would hold.
    // needs a quiet machine: only in that the server must get 64 MiB through
    // loopback in the timeout's second (it gets several GiB through with one
    // core to itself, and well over 64 MiB with the other core busy too).
    assert!(sent > 64 << 20, "only {sent} bytes streamed in {took:?}");
    let grew = peak.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!("10 GB body: {sent} bytes streamed in {took:?}, RSS {before} KiB + {grew} KiB at the peak");
    assert!(
        grew < 64 * 1024,
        "RSS grew by {grew} KiB ({before} KiB before) while {sent} bytes were streamed"
    );
}

#[test]
fn an_endless_chunked_body_times_out() {
    let _s = serial();
    hostile(
        "endless chunked",
        |mut s, c| {
            if read_request(&mut s)
                && s.write_all(b"HTTP/1.1 200 OK\r\nX-Worker: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .is_ok()
            {
                let chunk = [&b"1000\r\n"[..], &[b'y'; 0x1000], b"\r\n"].concat();
                c.stream(s, || chunk.clone());
            }
        },
        ErrorClass::Timeout,
    );
}

#[test]
fn an_endless_eof_delimited_body_times_out() {
    let _s = serial();
    let sent = hostile(
        "endless EOF-delimited",
        |mut s, c| {
            if read_request(&mut s) && s.write_all(b"HTTP/1.0 200 OK\r\nX-Worker: 1\r\n\r\n").is_ok() {
                let mut k = 0u64;
                c.stream(s, || {
                    k += 1;
                    noise(k, 8192)
                });
            }
        },
        ErrorClass::Timeout,
    );
    // needs a quiet machine: only in that the server must get 1 MiB of noise
    // out in the timeout's second (see the 10 GB body).
    assert!(sent > 1 << 20, "only {sent} bytes streamed");
}

// --------------------------------------------------------------- malformed

#[test]
fn half_a_head_then_close_is_malformed() {
    let _s = serial();
    hostile(
        "half head, close",
        |mut s, _| {
            if read_request(&mut s) {
                let _ = s.write_all(HALF_HEAD);
            }
        },
        ErrorClass::Malformed,
    );
}

#[test]
fn half_a_body_then_close_is_malformed() {
    let _s = serial();
    hostile(
        "half body, close",
        |mut s, _| {
            if read_request(&mut s) {
                let _ = s.write_all(HALF_BODY);
            }
        },
        ErrorClass::Malformed,
    );
}

#[test]
fn random_bytes_then_close_are_malformed() {
    let _s = serial();
    // Less than a head may hold, so the end of stream decides.
    hostile(
        "noise, close",
        |mut s, _| {
            if read_request(&mut s) {
                let _ = s.write_all(&noise(7, 3000));
            }
        },
        ErrorClass::Malformed,
    );
    // More than a head may hold: malformed before the end of stream.
    hostile(
        "lots of noise, close",
        |mut s, _| {
            if read_request(&mut s) {
                s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                let _ = s.write_all(&noise(11, 256 * 1024));
            }
        },
        ErrorClass::Malformed,
    );
}

// ------------------------------------------------------------ reset, refused

#[test]
fn a_reset_after_the_request_is_reset() {
    let _s = serial();
    hostile(
        "reset after request",
        |mut s, _| {
            read_all_but_last_byte(&mut s);
        },
        ErrorClass::Reset,
    );
}

#[test]
fn half_a_response_then_reset_is_reset() {
    let _s = serial();
    hostile(
        "half response, reset",
        |mut s, _| {
            if read_all_but_last_byte(&mut s) {
                let _ = s.write_all(HALF_BODY);
                // Let the bytes arrive first, then RST (the unread byte).
                std::thread::sleep(Duration::from_millis(50));
            }
        },
        ErrorClass::Reset,
    );
}

#[test]
fn nothing_listening_is_refused() {
    let _s = serial();
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (r, took) = run(addr);
    check("nothing listening", &r, took, ErrorClass::Refused);
}

// ----------------------------------------------------------------- default

/// The default timeout (`--timeout` and `Config::new`) is 5 s, and a run
/// with it against a server that never answers ends in 5 s + a little.
#[test]
fn the_default_timeout_is_5_s_and_applies() {
    let _s = serial();
    assert_eq!(loadgen::config::DEFAULT_TIMEOUT, Duration::from_secs(5));
    let server = Server::spawn(1, |mut s, c| {
        if read_request(&mut s) {
            c.hold(s);
        }
    });
    let cfg = Config::new(server.addr, 1, Stop::Connections(1));
    assert_eq!(cfg.timeout, loadgen::config::DEFAULT_TIMEOUT);
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    server.finish();
    assert_eq!((r.started, r.completed, r.errors.timeout), (1, 0, 1), "{r:?}");
    // A deadline cannot pass before the timeout ...
    assert!(
        r.elapsed >= Duration::from_secs(5) && took >= r.elapsed,
        "took {took:?}: {r:?}"
    );
    // ... and (liveness, generous) the run ends soon after it.
    assert!(took < Duration::from_secs(5 + 2), "took {took:?}");
    // The binary's --timeout default says the same.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let after = help.find("--timeout").map_or("", |i| &help[i..]);
    let default = after.find("[default:").map_or("", |i| &after[i..]);
    assert!(default.starts_with("[default: 5s]"), "--timeout help:\n{help}");
}

/// Resident set size of this process, KiB (`VmRSS` in /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
