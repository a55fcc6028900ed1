//! Loopback integration tests: the engine and the binary against tiny
//! in-test servers on 127.0.0.1 (std::net, one thread per "worker").
//!
//! Each server thread accepts on a shared listener, reads the request up to
//! the blank line, answers as told, counts what it answered, and closes (or,
//! for keep-alive, reads the next request). The counts are compared with what
//! the load generator attributed.
//!
//! Time: the machine these tests run on may be busy, and a busy 2-vCPU
//! machine can stop every thread of the process for a few hundred ms (seen:
//! 255 ms with one core kept busy by a shell loop). So no assertion here is
//! a window derived from a sleep. What is asserted about time is one of:
//!
//! - an identity or an exact count (`scheduled == started + dropped`; the
//!   arrivals of a schedule, computed with [`Schedule`]);
//! - a lower bound the code guarantees (a Duration-mode run cannot end
//!   before its duration, nor an open-loop run before its last arrival is
//!   due; a timeout cannot fire before the timeout; a server delay shows up
//!   in every latency that includes it);
//! - an upper bound that follows from a clock read around the run
//!   (`scheduled <= rate * took + 1`, `elapsed <= took`) or from what the run
//!   itself measured (its largest corrected latency);
//! - a liveness bound (the run ends within its least possible length plus
//!   a generous 2 s or more), said as such where it is made;
//! - where waiting for something is needed (a cancel once connections are in
//!   flight), the test waits for the event itself, in a loop bounded by
//!   count and time, not for a sleep.
//!
//! A few checks measure how well the engine keeps to time; they are marked
//! `needs a quiet machine`, take their tolerance from what the run measured,
//! and still pass with one core busy. Checks that a Duration-mode run did
//! anything at all assume the machine was not stopped for the whole run.
//!
//! The tests run one at a time ([`serial`]), so that those checks see as
//! quiet a machine as there is.

use crate::common::serial;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgen::engine::CANCEL_GRACE;
use loadgen::schedule::Schedule;
use loadgen::{Arrivals, Attribution, Config, IntervalHist, Intervals, OpenLoop, Report, Stop};

/// What a server thread does with an accepted connection; returns whether to count it.
type Handler = Arc<dyn Fn(TcpStream, usize, &mut Vec<TcpStream>) -> bool + Send + Sync>;

struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<Vec<AtomicU64>>,
    peers: Arc<Mutex<Vec<IpAddr>>>,
    threads: Vec<JoinHandle<()>>,
}

impl TestServer {
    fn spawn(workers: usize, handler: Handler) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());
        let peers = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..workers)
            .map(|k| {
                let l = listener.try_clone().unwrap();
                let (stop, counts, peers, handler) = (stop.clone(), counts.clone(), peers.clone(), handler.clone());
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    while let Ok((s, peer)) = l.accept() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        peers.lock().unwrap().push(peer.ip());
                        if handler(s, k, &mut held) {
                            counts[k].fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        TestServer {
            addr,
            stop,
            counts,
            peers,
            threads,
        }
    }

    /// Answers every request with a valid response from worker `k`.
    fn ok(workers: usize) -> TestServer {
        TestServer::spawn(workers, respond(|k| ok_response(&k.to_string(), "ok")))
    }

    /// Stops the threads and returns what each worker counted.
    fn shutdown(mut self) -> (Vec<u64>, Vec<IpAddr>) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.threads.len() {
            let _ = TcpStream::connect(self.addr);
        }
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let counts = self.counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let peers = std::mem::take(&mut *self.peers.lock().unwrap());
        (counts, peers)
    }
}

fn ok_response(id: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Worker: {id}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `Connection: close` response that names its worker only in the body.
fn ok_body_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads the request up to the blank line (so closing does not send RST).
fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(
        buf.starts_with(b"GET / HTTP/1.1\r\nHost: "),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    assert!(buf
        .windows(19)
        .any(|w| w.eq_ignore_ascii_case(b"connection: close\r\n")));
    true
}

/// A handler that reads the request, writes `resp(k)` and closes.
fn respond(resp: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static) -> Handler {
    Arc::new(move |mut s, k, _| read_request(&mut s) && s.write_all(&resp(k)).is_ok())
}

fn check_invariants(r: &Report) {
    assert_eq!(r.scheduled, r.started + r.dropped, "{r:?}");
    assert_eq!(r.started, r.completed + r.errors.total(), "{r:?}");
    let conns: u64 = r.per_worker.iter().map(|w| w.completed).sum();
    assert_eq!(conns, r.completed, "{r:?}");
    let unknown = r.worker(loadgen::report::UNKNOWN_WORKER).map_or(0, |w| w.completed);
    assert_eq!(r.worker_counts().iter().sum::<u64>() + unknown, r.completed, "{r:?}");
    let reqs: u64 = r.per_worker.iter().map(|w| w.requests).sum();
    assert_eq!(reqs, r.requests, "{r:?}");
    assert!(r.requests >= r.completed, "{r:?}");
    if !r.phases.is_empty() || r.requests == 0 {
        assert_eq!(r.latency.len(), r.requests, "{r:?}");
        for h in [&r.phases.ttfb, &r.phases.total, &r.phases.total_uncorrected] {
            assert_eq!(h.len(), r.requests, "{r:?}");
        }
        assert!(r.phases.connect.len() >= r.completed, "{r:?}");
        for w in &r.per_worker {
            assert_eq!(w.latency.len(), w.requests, "{w:?}");
            assert_eq!(w.phases.connect.len(), w.completed, "{w:?}");
        }
    }
}

fn config(addr: SocketAddr, concurrency: usize, stop: Stop) -> Config {
    let mut c = Config::new(addr, concurrency, stop);
    c.timeout = Duration::from_secs(5);
    c
}

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

// ---------------------------------------------------------------- attribution

#[test]
fn attribution_matches_what_the_server_counted() {
    let _serial = serial();
    let server = TestServer::ok(4);
    let mut cfg = config(server.addr, 8, Stop::Connections(2000));
    cfg.threads = 2;
    let r = loadgen::run(&cfg).unwrap();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    assert_eq!((r.started, r.completed, r.errors.total()), (2000, 2000, 0), "{r:?}");
    assert_eq!(counts.iter().sum::<u64>(), 2000);
    for (k, &n) in counts.iter().enumerate() {
        let got = r.worker(&k.to_string()).map_or(0, |w| w.completed);
        assert_eq!(got, n, "worker {k}: server {counts:?}, loadgen {r:?}");
    }
    let ids: Vec<_> = r.per_worker.iter().map(|w| w.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|s| s.parse::<u64>().unwrap());
    assert_eq!(ids, sorted, "numeric order");
    assert!(r.elapsed > Duration::ZERO && r.conn_per_s() > 0.0);
}

#[test]
fn response_without_worker_header_counts_as_unknown() {
    let _serial = serial();
    let server = TestServer::spawn(
        1,
        respond(|_| b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nno!".to_vec()),
    );
    let r = loadgen::run(&config(server.addr, 2, Stop::Connections(10))).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 10, "{r:?}");
    assert_eq!(r.per_worker.len(), 1);
    assert_eq!((r.per_worker[0].id.as_str(), r.per_worker[0].completed), ("?", 10));
}

/// Checks that the report's per-worker counts are what the server counted
/// (connections and, with keep-alive, responses), under ids `w{k}`, and that
/// no other worker (such as a decoy `x-worker` value) appears.
fn check_counts(r: &Report, conns: &[u64], answered: Option<&[AtomicU64]>) {
    check_invariants(r);
    assert_eq!(r.errors.total(), 0, "{r:?}");
    for (k, &n) in conns.iter().enumerate() {
        let w = r.worker(&format!("w{k}"));
        assert_eq!(
            w.map_or(0, |w| w.completed),
            n,
            "worker {k}: server {conns:?}, loadgen {r:?}"
        );
        if let Some(a) = answered {
            assert_eq!(w.map_or(0, |w| w.requests), a[k].load(Ordering::SeqCst), "worker {k}");
        }
    }
    let ids: Vec<&str> = r.per_worker.iter().map(|w| w.id.as_str()).collect();
    assert!(ids.iter().all(|id| id.starts_with('w')), "{ids:?}");
}

#[test]
fn body_attribution_matches_what_the_server_counted() {
    let _serial = serial();
    // The id only in the body's first line (with a decoy x-worker header);
    // worker 2 sends an EOF-delimited body, worker 3 a body longer than the
    // read buffer.
    let big = "b".repeat(40_000);
    let server = TestServer::spawn(
        4,
        respond(move |k| match k {
            2 => format!("HTTP/1.0 200 OK\r\nx-worker: decoy\r\n\r\n  w{k}  \r\nuntil eof").into_bytes(),
            3 => ok_body_response(&format!("w{k}\n{big}")),
            _ => ok_body_response(&format!("w{k}\nhello\n")),
        }),
    );
    let mut cfg = config(server.addr, 8, Stop::Connections(1000));
    cfg.threads = 2;
    cfg.attribution = Attribution::Body;
    let r = loadgen::run(&cfg).unwrap();
    let (counts, _) = server.shutdown();
    assert_eq!((r.completed, counts.iter().sum::<u64>()), (1000, 1000), "{r:?}");
    check_counts(&r, &counts, None);

    // Keep-alive: responses back to back on one connection, each named by its body.
    let answered = counters(2);
    let server = TestServer::spawn(
        2,
        keep_alive(answered.clone(), 5, 100, |k| {
            let body = format!("w{k}\nresponse body");
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
        }),
    );
    let mut cfg = config(server.addr, 4, Stop::Connections(100));
    cfg.threads = 2;
    cfg.requests_per_conn = 5;
    cfg.attribution = Attribution::Body;
    let r = loadgen::run(&cfg).unwrap();
    let (conns, _) = server.shutdown();
    assert_eq!((r.completed, r.requests), (100, 500), "{r:?}");
    check_counts(&r, &conns, Some(&answered));
}

#[test]
fn custom_header_attribution_matches_what_the_server_counted() {
    let _serial = serial();
    // The id in x-served-by; x-worker carries a decoy that must be ignored.
    let server = TestServer::spawn(
        3,
        respond(|k| {
            format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Worker: decoy\r\nX-Served-By: w{k}\r\n\r\nok")
                .into_bytes()
        }),
    );
    let mut cfg = config(server.addr, 6, Stop::Connections(900));
    cfg.threads = 2;
    cfg.attribution = Attribution::parse("header:X-Served-By").unwrap();
    let r = loadgen::run(&cfg).unwrap();
    let (counts, _) = server.shutdown();
    assert_eq!((r.completed, counts.iter().sum::<u64>()), (900, 900), "{r:?}");
    check_counts(&r, &counts, None);

    // By default the same responses are attributed to the decoy.
    let server = TestServer::spawn(1, respond(|_| ok_response("decoy", "ok")));
    let r = loadgen::run(&config(server.addr, 2, Stop::Connections(10))).unwrap();
    server.shutdown();
    assert_eq!(r.worker("decoy").map(|w| w.completed), Some(10), "{r:?}");
}

#[test]
fn eof_delimited_and_large_bodies_complete() {
    let _serial = serial();
    let big = "b".repeat(200_000);
    let server = TestServer::spawn(
        2,
        respond(move |k| {
            if k == 0 {
                format!("HTTP/1.0 200 OK\r\nx-worker: w{k}\r\n\r\nuntil eof").into_bytes()
            } else {
                ok_response(&format!("w{k}"), &big)
            }
        }),
    );
    let r = loadgen::run(&config(server.addr, 4, Stop::Connections(40))).unwrap();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 40, "{r:?}");
    assert_eq!(r.worker("w0").map_or(0, |w| w.completed), counts[0]);
    assert_eq!(r.worker("w1").map_or(0, |w| w.completed), counts[1]);
}

// ---------------------------------------------------------------- stopping

#[test]
fn connections_mode_attempts_exactly_n() {
    let _serial = serial();
    for (n, conc, threads) in [(1, 1, 1), (3, 8, 2), (101, 5, 3), (64, 64, 2)] {
        let server = TestServer::ok(2);
        let mut cfg = config(server.addr, conc, Stop::Connections(n));
        cfg.threads = threads;
        let r = loadgen::run(&cfg).unwrap();
        let (counts, peers) = server.shutdown();
        check_invariants(&r);
        assert_eq!(r.started, n, "n={n} conc={conc} threads={threads}: {r:?}");
        assert_eq!(r.completed, n);
        assert_eq!(counts.iter().sum::<u64>(), n, "the server saw exactly n");
        // n real connections plus one wake-up connection per server thread.
        assert!(peers.len() as u64 >= n);
    }
}

#[test]
fn duration_mode_stops_in_bounded_time() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let d = Duration::from_millis(300);
    let mut cfg = config(server.addr, 4, Stop::Duration(d));
    cfg.threads = 2;
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    // A slot stops starting connections only once the duration is over, and
    // the run ends only when every slot has stopped.
    assert!(took >= d, "{took:?}");
    // The report's clock runs inside the one read around the run.
    assert!(r.elapsed <= took, "{took:?} {r:?}");
    // Liveness (generous): the connections in flight at the end finish
    // within their timeout.
    assert!(took < d + cfg.timeout + Duration::from_secs(2), "{took:?}");
    // The server answers every connection at once, well within the timeout.
    assert_eq!((r.completed, r.errors.total()), (r.started, 0), "{r:?}");
    assert_eq!(counts.iter().sum::<u64>(), r.completed);
    // needs a quiet machine: only in that the threads must get to run before
    // the 300 ms are over (a machine stopped for the whole run starts nothing).
    assert!(r.completed > 0, "{r:?}");
}

#[test]
fn cancel_stops_a_long_run() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let mut cfg = config(server.addr, 4, Stop::Duration(Duration::from_secs(60)));
    // The engine reports each 10 ms interval as it ends, with the
    // connections completed in it: the canceller waits for the first
    // completed one, not for a sleep.
    let (tx, rx) = std::sync::mpsc::channel();
    cfg.intervals = Some(Intervals {
        every: Duration::from_millis(10),
        sink: tx,
    });
    let canceller = cancel_when(cfg.cancel.clone(), move || {
        rx.try_iter().any(|h| h.workers.iter().any(|w| w.connections > 0))
    });
    let r = loadgen::run(&cfg).unwrap();
    let end = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    server.shutdown();
    check_invariants(&r);
    // A 60 s run ends only because it was cancelled, so not before the cancel ...
    assert!(end >= cancelled_at);
    // ... and then soon (liveness, generous: the engine sees the flag within
    // 50 ms, and what is in flight gets CANCEL_GRACE).
    let after = end - cancelled_at;
    assert!(after < CANCEL_GRACE + Duration::from_secs(2), "{after:?}");
    // It was cancelled after a completed connection was reported.
    assert!(r.completed > 0, "{r:?}");
    // The server answers at once: a connection can only fail by being cut
    // off by the cancel.
    assert_eq!(r.errors.total(), r.errors.cancelled, "{r:?}");
}

/// Sets `cancel` once `ready()` says so (polled every ms, for 10 s at most:
/// then it cancels anyway, and the test's own assertions fail); returns
/// when the flag was set (read just before setting it).
fn cancel_when(cancel: Arc<AtomicBool>, mut ready: impl FnMut() -> bool + Send + 'static) -> JoinHandle<Instant> {
    std::thread::spawn(move || {
        let give_up = Instant::now() + Duration::from_secs(10);
        for _ in 0..10_000 {
            if ready() || Instant::now() >= give_up {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let at = Instant::now();
        cancel.store(true, Ordering::SeqCst);
        at
    })
}

#[test]
fn gap_spaces_out_connections() {
    let _serial = serial();
    let server = TestServer::ok(1);
    let mut cfg = config(server.addr, 1, Stop::Connections(10));
    cfg.gap = Duration::from_millis(10);
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 10);
    // One slot: each connection starts no earlier than the gap after the
    // previous one ended, so the run's own clock spans at least nine gaps.
    assert!(r.elapsed >= 9 * cfg.gap, "{:?}", r.elapsed);
}

// ---------------------------------------------------------------- errors

#[test]
fn closed_port_is_refused() {
    let _serial = serial();
    let addr = closed_port();
    let mut cfg = config(addr, 4, Stop::Connections(20));
    cfg.threads = 2;
    let r = loadgen::run(&cfg).unwrap();
    check_invariants(&r);
    assert_eq!((r.started, r.completed, r.errors.refused), (20, 0, 20), "{r:?}");
    assert!(r.per_worker.is_empty());
}

#[test]
fn garbage_and_truncated_responses_are_malformed() {
    let _serial = serial();
    let garbage = TestServer::spawn(2, respond(|_| b"this is not http\r\n\r\n".to_vec()));
    let r = loadgen::run(&config(garbage.addr, 3, Stop::Connections(12))).unwrap();
    garbage.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.malformed), (0, 12), "{r:?}");

    let short = TestServer::spawn(
        1,
        respond(|_| b"HTTP/1.1 200 OK\r\nx-worker: 1\r\ncontent-length: 100\r\n\r\nonly ten b".to_vec()),
    );
    let r = loadgen::run(&config(short.addr, 2, Stop::Connections(6))).unwrap();
    short.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.malformed), (0, 6), "{r:?}");
}

#[test]
fn reset_is_its_own_class() {
    let _serial = serial();
    // Closing with unread request bytes makes the kernel send RST.
    let server = TestServer::spawn(
        2,
        Arc::new(|mut s, _, _: &mut Vec<TcpStream>| {
            let mut four = [0u8; 4];
            s.read_exact(&mut four).is_ok()
        }),
    );
    let r = loadgen::run(&config(server.addr, 2, Stop::Connections(10))).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.reset), (0, 10), "{r:?}");
}

#[test]
fn silent_server_times_out() {
    let _serial = serial();
    // Accepts, keeps the connection open, never answers.
    let server = TestServer::spawn(
        1,
        Arc::new(|s, _, held: &mut Vec<TcpStream>| {
            held.push(s);
            false
        }),
    );
    let mut cfg = config(server.addr, 3, Stop::Connections(6));
    cfg.timeout = Duration::from_millis(200);
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    server.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.timeout), (0, 6), "{r:?}");
    // A timeout cannot fire before the timeout, and with 6 connections on 3
    // slots one slot ran two in turn: at least two rounds, on the run's own
    // clock and so on the one around it.
    assert!(r.elapsed >= 2 * cfg.timeout, "two rounds of 200 ms: {r:?}");
    assert!(took >= r.elapsed, "{took:?} {r:?}");
    // Liveness (generous): two rounds, each noticed within a scan.
    assert!(took < 2 * cfg.timeout + Duration::from_secs(2), "{took:?}");
}

#[test]
fn cancel_closes_what_is_still_in_flight_after_the_grace() {
    let _serial = serial();
    let server = TestServer::spawn(
        1,
        Arc::new(|s, _, held: &mut Vec<TcpStream>| {
            held.push(s);
            false
        }),
    );
    let mut cfg = config(server.addr, 2, Stop::Duration(Duration::from_secs(60)));
    // Longer than the run can take (see the liveness bound below): only the
    // cancel can end a connection.
    cfg.timeout = Duration::from_secs(30);
    cfg.threads = 2;
    // Cancel once the server has accepted both connections (one per slot).
    let peers = server.peers.clone();
    let canceller = cancel_when(cfg.cancel.clone(), move || peers.lock().unwrap().len() >= 2);
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let end = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    server.shutdown();
    check_invariants(&r);
    assert!(end >= cancelled_at, "a 60 s run ended before the cancel");
    // Liveness (generous): the flag is seen within 50 ms, then the grace.
    let after = end - cancelled_at;
    assert!(after < CANCEL_GRACE + Duration::from_secs(2), "{after:?}");
    let took = end - t;
    assert!(took < cfg.timeout, "{took:?}");
    // So no deadline passed (a timeout cannot fire before the timeout): the
    // two connections the server holds, and no others (the slots never
    // freed), were closed by the cancel once its grace ran out.
    assert_eq!(
        (r.started, r.completed, r.errors.timeout, r.errors.cancelled),
        (2, 0, 0, 2),
        "{r:?}"
    );
    // The grace: the connections were still open CANCEL_GRACE after the
    // engine saw the flag, which it cannot have seen before the run began.
    assert!(took >= CANCEL_GRACE, "{took:?}");
}

#[test]
fn invalid_config_is_rejected_before_any_connection() {
    let _serial = serial();
    let cfg = Config::new("192.0.2.1:80".parse().unwrap(), 1, Stop::Connections(1));
    let e = loadgen::run(&cfg).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("192.0.2.1:80"), "{e}");
}

// ---------------------------------------------------------------- sources

#[test]
fn source_addresses_rotate() {
    let _serial = serial();
    let server = TestServer::ok(1);
    let mut cfg = config(server.addr, 1, Stop::Connections(20));
    let a: IpAddr = "127.0.0.2".parse().unwrap();
    let b: IpAddr = "127.0.0.3".parse().unwrap();
    cfg.sources = vec![a, b];
    let r = loadgen::run(&cfg).unwrap();
    let (_, peers) = server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 20, "{r:?}");
    let from = |ip| peers.iter().filter(|&&p| p == ip).count();
    assert_eq!((from(a), from(b)), (10, 10), "{peers:?}");
}

#[test]
fn ipv6_loopback_works_when_available() {
    let _serial = serial();
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no ::1 here; skipped");
        return;
    };
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..5 {
            let (mut s, _) = listener.accept().unwrap();
            assert!(read_request(&mut s));
            s.write_all(&ok_response("6", "")).unwrap();
        }
    });
    let r = loadgen::run(&config(addr, 1, Stop::Connections(5))).unwrap();
    check_invariants(&r);
    assert_eq!(r.worker("6").map(|w| w.completed), Some(5), "{r:?}");
    server.join().unwrap();
}

// ---------------------------------------------------------------- binary

fn loadgen_bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen")).args(args).output().unwrap()
}

/// Checks the binary's per-worker table against what the server counted: a
/// line `worker {prefix}{k} ...` with the count for every worker that served
/// something, and none for a worker that served nothing (which of the
/// server's threads accepts a connection is up to the scheduler: on a busy
/// machine one of them can take every connection).
fn check_table(stdout: &str, counts: &[u64], prefix: &str) {
    for (k, &n) in counts.iter().enumerate() {
        let head = format!("worker {prefix}{k} ");
        let line = stdout.lines().find(|l| l.starts_with(&head));
        if n == 0 {
            assert_eq!(line, None, "{stdout}");
        } else {
            let line = line.unwrap_or_else(|| panic!("no line for worker {prefix}{k}: {stdout}"));
            assert_eq!(line.split_whitespace().nth(2), Some(n.to_string().as_str()), "{line}");
        }
    }
}

#[test]
fn binary_prints_the_table_and_exits_0() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let target = server.addr.to_string();
    let out = loadgen_bin(&["--target", &target, "--concurrency", "4", "--connections", "200"]);
    let (counts, _) = server.shutdown();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_table(&stdout, &counts, "");
    assert!(stdout.contains("completed: 200 of 200 started"), "{stdout}");
    assert!(stdout.contains("errors: none"), "{stdout}");
    assert!(stdout.contains("conn/s: ") && stdout.contains("jain "), "{stdout}");
}

#[test]
fn binary_exits_1_when_connections_fail() {
    let _serial = serial();
    let target = closed_port().to_string();
    let out = loadgen_bin(&["--target", &target, "-c", "2", "-n", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("errors: 5 (refused 5)"), "{stdout}");
}

#[test]
fn binary_rejects_bad_input_with_exit_2() {
    let _serial = serial();
    let out = loadgen_bin(&["--target", "10.0.0.1:80", "--concurrency", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: target 10.0.0.1:80 is not on loopback: only 127.0.0.0/8 and ::1 may be loaded \
         unless --allow-remote is given"
    );
    for bad in [
        &["--target", "127.0.0.1:80", "-c", "1", "--duration", "10x"][..],
        &["--target", "127.0.0.1:80", "-c", "1", "-n", "5", "--duration", "1s"],
        &["--target", "127.0.0.1:80", "-c", "0"],
        &["--target", "127.0.0.1:80", "-c", "2", "--threads", "3"],
        &["--target", "127.0.0.1:80", "-c", "1", "--source", "10.1.1.1"],
        &["--target", "nowhere", "-c", "1"],
    ] {
        let out = loadgen_bin(bad);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let first = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        assert!(first.starts_with("error: "), "{bad:?}: {first}");
    }
    let help = loadgen_bin(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
}

#[test]
fn binary_attributes_by_body_or_custom_header() {
    let _serial = serial();
    for (attribute, resp) in [
        (
            "body",
            Arc::new(|k: usize| ok_body_response(&format!("w{k}\n"))) as Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
        ),
        (
            "header:x-served-by",
            Arc::new(|k: usize| {
                format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-worker: decoy\r\nX-SERVED-BY: w{k}\r\n\r\n")
                    .into_bytes()
            }),
        ),
    ] {
        let server = TestServer::spawn(2, respond(move |k| resp(k)));
        let target = server.addr.to_string();
        let out = loadgen_bin(&["--target", &target, "-c", "4", "-n", "200", "--attribute", attribute]);
        let (counts, _) = server.shutdown();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{attribute}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_table(&stdout, &counts, "w");
        assert!(
            !stdout.contains("worker decoy") && !stdout.contains("worker ? "),
            "{stdout}"
        );
        assert!(stdout.contains("completed: 200 of 200 started"), "{stdout}");
    }
}

#[test]
fn binary_rejects_bad_attribute_and_remote_input_with_exit_2() {
    let _serial = serial();
    for (args, want) in [
        (
            &["--target", "127.0.0.1:9", "-c", "1", "--attribute", "header:"][..],
            "error: --attribute 'header:': the header name is empty: expected header:NAME, e.g. header:x-worker",
        ),
        (
            &["--target", "127.0.0.1:9", "-c", "1", "--attribute", "headers"],
            "error: --attribute 'headers': expected header:NAME (e.g. header:x-worker) or body",
        ),
        (
            &["--target", "127.0.0.1:9", "-c", "1", "--attribute", "header:x worker"],
            "error: --attribute 'header:x worker': 'x worker' is not a header name: \
             only letters, digits and !#$%&'*+-.^_`|~ are allowed",
        ),
        // --allow-remote lets the target through, but not a non-loopback
        // source, nor a loopback source with a remote target (nothing is sent).
        (
            &[
                "--target",
                "192.0.2.1:80",
                "-c",
                "1",
                "--allow-remote",
                "--source",
                "10.1.1.1",
            ],
            "error: source 10.1.1.1 is not on loopback: only 127.0.0.0/8 and ::1 may be used",
        ),
        (
            &[
                "--target",
                "192.0.2.1:80",
                "-c",
                "1",
                "--allow-remote",
                "--sources",
                "127.0.0.1",
            ],
            "error: source 127.0.0.1 with target 192.0.2.1:80: a loopback source cannot reach a remote target",
        ),
        (
            &["--target", "192.0.2.1:80", "-c", "1", "--sources", "127.0.0.1"],
            "error: target 192.0.2.1:80 is not on loopback: only 127.0.0.0/8 and ::1 may be loaded \
             unless --allow-remote is given",
        ),
    ] {
        let out = loadgen_bin(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), want, "{args:?}: one line");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // --allow-remote with a loopback target changes nothing.
    let server = TestServer::ok(1);
    let target = server.addr.to_string();
    let out = loadgen_bin(&["--target", &target, "-c", "1", "-n", "5", "--allow-remote"]);
    let (counts, _) = server.shutdown();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(counts, [5]);
}

// ---------------------------------------------------------------- open loop

fn open_config(addr: SocketAddr, rate: f64, arrivals: Arrivals, stop: Stop) -> Config {
    let mut c = Config::new_open(
        addr,
        OpenLoop {
            rate,
            arrivals,
            max_inflight: 64,
        },
        stop,
    );
    c.timeout = Duration::from_secs(5);
    c
}

/// Connections started per second over the run.
fn achieved_rate(r: &Report) -> f64 {
    r.started as f64 / r.elapsed.as_secs_f64()
}

/// Every arrival of an open-loop config's schedule, over all its threads, in
/// time order (offsets from the run start): exactly what the engine's
/// threads walk, the schedule being fixed in advance.
fn arrivals(cfg: &Config) -> Vec<Duration> {
    let open = cfg.open.expect("an open-loop config");
    let mut all: Vec<Duration> = (0..cfg.threads)
        .flat_map(|i| Schedule::new(&open, cfg.seed, i, cfg.threads, cfg.stop))
        .collect();
    all.sort_unstable();
    all
}

/// An upper bound on every response's corrected latency (`done - intended`)
/// in the run: the histogram's largest value, plus the microsecond that
/// recording truncates.
fn max_total(r: &Report) -> Duration {
    Duration::from_micros(r.phases.total.max() + 1)
}

/// Checks what an open-loop run in Duration mode that was not cancelled
/// guarantees about time, whatever the scheduler does; `took` is a clock
/// read around `loadgen::run`. Returns the schedule's arrivals.
fn check_open_duration_run(r: &Report, cfg: &Config, took: Duration) -> Vec<Duration> {
    let all = arrivals(cfg);
    let n = all.len();
    // Every arrival before the end is taken, then started or dropped: exact.
    assert_eq!(r.scheduled, n as u64, "{r:?}");
    // An arrival is taken only once it is due, and the run ends only when
    // every one has been: it cannot end before the last one is due.
    let last = all.last().copied().unwrap_or_default();
    assert!(took >= last, "took {took:?}, the last arrival is at {last:?}");
    // The report's clock (first start to last end) runs inside `took`.
    assert!(r.elapsed <= took, "took {took:?}: {r:?}");
    // At most `dropped` arrivals were not started: one of the first
    // `dropped + 1` was, no later than its time plus its corrected latency,
    // and one of the last `dropped + 1` was, no earlier than its time.
    if r.started > 0 {
        let d = r.dropped as usize;
        let least = all[n - 1 - d].saturating_sub(all[d] + max_total(r));
        assert!(
            r.elapsed >= least,
            "elapsed {:?} < {least:?}: connections started before they were due? {r:?}",
            r.elapsed
        );
    }
    all
}

/// How well an open-loop run in Duration mode (ending at `end`) kept to its
/// schedule `all`.
///
/// needs a quiet machine: it measures achieved timing. The tolerance
/// follows from what the run measured: its largest corrected latency (a
/// stall of the machine shows up there), plus 1% of the schedule's span for
/// what no histogram holds (the moment between a connection's last
/// response and its close). With one core busy, stalls of a few hundred ms
/// happen and are absorbed by the first term.
fn check_pacing(r: &Report, all: &[Duration], end: Duration) {
    let span = all[all.len() - 1] - all[0];
    let late_by = max_total(r) + span / 100;
    // The run's clock spans the schedule, plus at most how late the last
    // response came.
    assert!(
        r.elapsed <= span + late_by,
        "achieved {:.1}/s over {:?}: the schedule spans {span:?}, the largest corrected latency is {:?}: {r:?}",
        achieved_rate(r),
        r.elapsed,
        max_total(r)
    );
    // An arrival is dropped here only if it still waited for a slot at the
    // end (the 5 s timeout is longer than the run), and it waited only while
    // the connections ahead of it, which were due before it, were still
    // running: so it came due within their corrected latency of the end.
    let tail = all.iter().filter(|&&t| t + late_by >= end).count() as u64;
    assert!(
        r.dropped <= tail,
        "{} dropped, but only {tail} arrivals came due within {late_by:?} of the end: {r:?}",
        r.dropped
    );
}

#[test]
fn open_loop_constant_rate_is_within_one_percent() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let d = Duration::from_secs(2);
    let mut cfg = open_config(server.addr, 2000.0, Arrivals::Constant, Stop::Duration(d));
    cfg.threads = 2;
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    let all = check_open_duration_run(&r, &cfg, took);
    // The two threads' arrivals together: every 0.5 ms from 0 to 1999.5 ms.
    assert_eq!(all.len(), 4000);
    for (k, &a) in all.iter().enumerate() {
        assert_eq!(a, Duration::from_micros(500 * k as u64), "arrival {k}");
    }
    // Arrivals due by the end of the run: at most R * took + 1.
    assert!(
        r.scheduled as f64 <= 2000.0 * took.as_secs_f64() + 1.0,
        "{took:?} {r:?}"
    );
    // The server answers at once, well within the 5 s timeout: nothing
    // fails, and it saw every connection that completed.
    assert_eq!((r.completed, r.errors.total()), (r.started, 0), "{r:?}");
    assert_eq!(counts.iter().sum::<u64>(), r.completed);
    // The corrected latency counts from the intended start, which is never
    // after the actual one: at every quantile it is at least the uncorrected.
    for q in [0.5, 0.9, 0.99, 1.0] {
        let (c, u) = (
            r.phases.total.value_at_quantile(q),
            r.phases.total_uncorrected.value_at_quantile(q),
        );
        assert!(c >= u, "quantile {q}: corrected {c} us, uncorrected {u} us");
    }
    assert!(r.late <= r.started, "{r:?}");
    // needs a quiet machine: the achieved rate is within 1% of 2000/s, once
    // the largest corrected latency is allowed for (see check_pacing).
    check_pacing(&r, &all, d);
}

#[test]
fn open_loop_poisson_count_is_within_three_sd() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let d = Duration::from_secs(2);
    let mut cfg = open_config(server.addr, 2000.0, Arrivals::Poisson, Stop::Duration(d));
    cfg.threads = 2;
    cfg.seed = 12345;
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    server.shutdown();
    check_invariants(&r);
    // The count is the schedule's, exactly (whatever the scheduler does) ...
    let all = check_open_duration_run(&r, &cfg, took);
    // ... and for this seed within 3 sd of its mean: a Poisson count over d
    // seconds at rate R has mean R*d and sd sqrt(R*d).
    let (mean, sd) = (4000.0, 4000f64.sqrt());
    let n = r.scheduled as f64;
    assert!(
        (n - mean).abs() <= 3.0 * sd,
        "{n} arrivals, want {mean} +- {:.0}",
        3.0 * sd
    );
    assert_eq!((r.completed, r.errors.total()), (r.started, 0), "{r:?}");
    // needs a quiet machine: see check_pacing.
    check_pacing(&r, &all, d);

    // The same seed gives the same schedule, so the same count: the one the
    // schedule computes.
    let server = TestServer::ok(1);
    let mut short = open_config(
        server.addr,
        1000.0,
        Arrivals::Poisson,
        Stop::Duration(Duration::from_millis(300)),
    );
    short.seed = 99;
    let a = loadgen::run(&short).unwrap();
    let b = loadgen::run(&short).unwrap();
    server.shutdown();
    check_invariants(&a);
    check_invariants(&b);
    let want = arrivals(&short).len() as u64;
    assert_eq!((a.scheduled, b.scheduled), (want, want), "{a:?} {b:?}");
    assert!(want > 200 && want < 400, "{want}");
}

/// Reads the request, waits `delay`, answers as worker `k`, closes.
fn slow(delay: Duration) -> Handler {
    Arc::new(move |mut s, k, _| {
        if !read_request(&mut s) {
            return false;
        }
        std::thread::sleep(delay);
        s.write_all(&ok_response(&k.to_string(), "slow")).is_ok()
    })
}

#[test]
fn open_loop_cap_makes_arrivals_late_and_corrects_latency() {
    let _serial = serial();
    // One server thread, 50 ms per connection: 20 conn/s at most. Offered:
    // 100/s, one connection at a time.
    let service = Duration::from_millis(50);
    let server = TestServer::spawn(1, slow(service));
    let mut cfg = open_config(server.addr, 100.0, Arrivals::Constant, Stop::Connections(12));
    cfg.threads = 1;
    cfg.open.as_mut().unwrap().max_inflight = 1;
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    check_invariants(&r);
    // One slot, held by each connection for at least the server's 50 ms
    // (it answers 50 ms after reading the request): the 12 take at least
    // 600 ms one after another, on the run's clock and so on the outer one.
    assert!(r.elapsed >= 12 * service, "{r:?}");
    assert!(took >= r.elapsed, "{took:?} {r:?}");
    // Liveness (generous).
    assert!(took < 12 * service + Duration::from_secs(2), "{took:?}");
    // So no arrival waited out the 5 s timeout: none dropped, none failed.
    assert_eq!(
        (r.scheduled, r.started, r.dropped, r.completed),
        (12, 12, 0, 12),
        "{r:?}"
    );
    // Arrivals are 10 ms apart and the slot is busy 50 ms at a time, so
    // every one but the first came due while the slot was busy (exact,
    // whatever the scheduler does).
    assert_eq!(r.late, 11, "{r:?}");
    let (total, unc) = (&r.phases.total, &r.phases.total_uncorrected);
    let (corrected, uncorrected) = (total.value_at_quantile(0.5), unc.value_at_quantile(0.5));
    // Uncorrected: from the actual start, so at least the server's 50 ms ...
    assert!(uncorrected >= 50_000, "{uncorrected} us");
    // ... and, the connections running one after another, no more in all
    // than the run's own clock (the histogram's mean is within 0.1%).
    let all_unc_us = unc.mean() * 12.0;
    let elapsed_us = r.elapsed.as_micros() as f64;
    assert!(
        all_unc_us <= elapsed_us * 1.001,
        "uncorrected latencies add up to {all_unc_us} us in a run of {elapsed_us} us"
    );
    // Corrected: from the intended start. Connection k starts no earlier
    // than k * 50 ms but was due at k * 10 ms: it waited at least k * 40 ms,
    // so its corrected latency is at least 50 + 40k ms, the median (the 6th
    // of 12) at least 250 ms ...
    assert!(
        corrected >= 250_000,
        "corrected {corrected} us, uncorrected {uncorrected} us"
    );
    // ... and what the correction adds, the wait, is on average at least
    // 40 * (0 + 1 + ... + 11) / 12 = 220 ms (less 1% for the histograms).
    let added_us = total.mean() - unc.mean();
    assert!(added_us >= 220_000.0 * 0.99, "the correction adds {added_us} us");

    // Shorter patience than the backlog: arrivals that waited longer than
    // the timeout, or still waited at the end, are dropped, never started.
    cfg.stop = Stop::Duration(Duration::from_millis(400));
    cfg.timeout = Duration::from_millis(150);
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    server.shutdown();
    check_invariants(&r);
    let all = check_open_duration_run(&r, &cfg, took);
    // 0, 10, ..., 390 ms.
    assert_eq!(all.len(), 40);
    assert!(r.started >= 1, "{r:?}");
    // One connection at a time, each holding the slot at least 50 ms (the
    // server's delay; a timeout takes 150 ms).
    let started = u32::try_from(r.started).unwrap();
    assert!(r.elapsed >= started * service, "{r:?}");
    // An arrival starts only if it has waited at most the timeout (checked
    // as the engine's loop turns; one turn is allowed 100 ms here). A
    // response's corrected latency is its wait plus its uncorrected one, so
    // the largest corrected latency exceeds the largest uncorrected one by
    // no more than the longest wait.
    let uncorrected_max = Duration::from_micros(r.phases.total_uncorrected.max());
    let waited = max_total(&r).saturating_sub(uncorrected_max);
    assert!(
        waited <= cfg.timeout + Duration::from_millis(100),
        "an arrival started after waiting at least {waited:?}: {r:?}"
    );
    // By that rule every start came by 390 + 150 + 100 ms, and starts are
    // at least 50 ms apart: no more than 13 of the 40 started.
    assert!(r.dropped >= 27, "{r:?}");
    // Every start after the first came due while the slot was busy with the
    // one before it (the next turn of the loop follows a connection's end
    // at once, and arrivals are 10 ms apart).
    assert!(r.late + 1 >= r.started, "{r:?}");
}

#[test]
fn open_loop_cancel_drops_what_waits() {
    let _serial = serial();
    // One server thread, 100 ms per connection; 200 arrivals per second, one
    // slot: the arrivals wait behind it.
    let service = Duration::from_millis(100);
    let server = TestServer::spawn(1, slow(service));
    let rate = 200.0;
    let mut cfg = open_config(
        server.addr,
        rate,
        Arrivals::Constant,
        Stop::Duration(Duration::from_secs(30)),
    );
    cfg.threads = 1;
    cfg.open.as_mut().unwrap().max_inflight = 1;
    // Cancel once the server has accepted a second connection: its one
    // thread accepts it only after answering the first.
    let peers = server.peers.clone();
    let canceller = cancel_when(cfg.cancel.clone(), move || peers.lock().unwrap().len() >= 2);
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let end = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    server.shutdown();
    check_invariants(&r);
    let took = end - t;
    // A 30 s run ends only because it was cancelled: not before the cancel,
    // and then soon (liveness, generous: the flag is seen within 50 ms, and
    // what is in flight gets CANCEL_GRACE).
    assert!(end >= cancelled_at, "ended before the cancel");
    let after = end - cancelled_at;
    assert!(after < CANCEL_GRACE + Duration::from_secs(2), "{after:?}");
    // The server accepted two, so two started.
    assert!(r.started >= 2, "{r:?}");
    // Only arrivals due by the end of the run were taken: arrival k is due
    // at k / R, so at most R * took + 1 of them (not the 6000 of 30 s).
    assert!(
        r.scheduled as f64 <= rate * took.as_secs_f64() + 1.0,
        "{} scheduled in {took:?}: {r:?}",
        r.scheduled
    );
    // Connection k started no earlier than k * 100 ms (each before it held
    // the slot that long), and the cancel took every arrival due by the time
    // it was seen, after the last start: at least those due by
    // (started - 1) * 100 ms, 20 per connection after the first. All but the
    // ones started were dropped.
    assert!(r.scheduled > 20 * (r.started - 1), "{r:?}");
    assert!(r.dropped >= 19 * (r.started - 1), "{r:?}");
    // The connection in flight at the cancel either completed within the
    // grace or was cut off; no other error.
    assert_eq!(r.errors.total(), r.errors.cancelled, "{r:?}");
}

// ---------------------------------------------------------------- keep-alive

/// Reads the next request head from `s` (keeping what follows in `buf`);
/// `Some(true)` if it says `Connection: close`, `None` at end of stream.
fn next_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<bool> {
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..p + 4).collect();
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            assert!(text.starts_with("get / http/1.1\r\nhost: "), "{text:?}");
            let close = text.contains("\r\nconnection: close\r\n");
            assert!(close || text.contains("\r\nconnection: keep-alive\r\n"), "{text:?}");
            return Some(close);
        }
        let mut chunk = [0u8; 512];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Serves requests on one connection, answering each with `resp(k)`, until
/// one says `Connection: close` or `max` were answered. Counts responses per
/// worker in `answered`; counts the connection only if the close came on
/// request number `k_close` exactly.
fn keep_alive(
    answered: Arc<Vec<AtomicU64>>,
    k_close: usize,
    max: usize,
    resp: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> Handler {
    Arc::new(move |mut s, k, _| {
        let mut buf = Vec::new();
        for n in 1..=max {
            let Some(close) = next_request(&mut s, &mut buf) else {
                return false;
            };
            if s.write_all(&resp(k)).is_err() {
                return false;
            }
            answered[k].fetch_add(1, Ordering::SeqCst);
            if close {
                return n == k_close;
            }
        }
        // Read the next request before closing, so the close is a FIN, not a RST.
        let _ = next_request(&mut s, &mut buf);
        false
    })
}

fn counters(n: usize) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..n).map(|_| AtomicU64::new(0)).collect())
}

fn ka_response(id: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Worker: {id}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn keep_alive_sends_k_requests_per_connection() {
    let _serial = serial();
    let answered = counters(2);
    let server = TestServer::spawn(
        2,
        keep_alive(answered.clone(), 10, 100, |k| ka_response(&k.to_string(), "hello")),
    );
    let mut cfg = config(server.addr, 4, Stop::Connections(100));
    cfg.threads = 2;
    cfg.requests_per_conn = 10;
    let r = loadgen::run(&cfg).unwrap();
    // And in the open loop.
    let mut open = open_config(server.addr, 500.0, Arrivals::Constant, Stop::Connections(30));
    open.requests_per_conn = 10;
    let o = loadgen::run(&open).unwrap();
    let (conns, _) = server.shutdown();
    for r in [&r, &o] {
        check_invariants(r);
        assert_eq!(r.errors.total(), 0, "{r:?}");
        assert_eq!(r.requests, 10 * r.completed, "{r:?}");
        // Each connection stays on one server worker.
        for w in &r.per_worker {
            assert_eq!(w.requests, 10 * w.completed, "{w:?}");
        }
        // One connect per connection, one total per response.
        assert_eq!(r.phases.connect.len(), r.completed);
        assert_eq!(r.phases.total.len(), r.requests);
    }
    assert_eq!((r.completed, o.completed), (100, 30));
    // The server saw each connection close on its 10th request, and sent
    // what the load generator attributed.
    assert_eq!(conns.iter().sum::<u64>(), 130, "{conns:?}");
    for k in 0..2 {
        let got: u64 = [&r, &o]
            .iter()
            .map(|x| x.worker(&k.to_string()).map_or(0, |w| w.requests))
            .sum();
        assert_eq!(got, answered[k].load(Ordering::SeqCst), "worker {k}");
        let got: u64 = [&r, &o]
            .iter()
            .map(|x| x.worker(&k.to_string()).map_or(0, |w| w.completed))
            .sum();
        assert_eq!(got, conns[k], "worker {k}");
    }
}

#[test]
fn keep_alive_failures_are_errors_and_keep_their_requests() {
    let _serial = serial();
    // No content-length on a keep-alive response: malformed at once.
    let answered = counters(1);
    let server = TestServer::spawn(
        1,
        keep_alive(answered.clone(), 5, 1, |_| {
            b"HTTP/1.1 200 OK\r\nx-worker: 0\r\n\r\nuntil eof".to_vec()
        }),
    );
    let mut cfg = config(server.addr, 2, Stop::Connections(8));
    cfg.requests_per_conn = 5;
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.malformed, r.requests), (0, 8, 0), "{r:?}");

    // The server closes after 3 of 5: the connection is an error, its three
    // responses stay counted.
    let answered = counters(1);
    let server = TestServer::spawn(1, keep_alive(answered.clone(), 5, 3, |_| ka_response("0", "ok")));
    cfg.target = server.addr;
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.malformed), (0, 8), "{r:?}");
    assert_eq!(r.requests, 24, "{r:?}");
    assert_eq!(r.worker("0").map(|w| (w.completed, w.requests)), Some((0, 24)));
    assert_eq!(answered[0].load(Ordering::SeqCst), 24);
    assert_eq!(r.phases.total.len(), 24);
    assert_eq!(r.phases.connect.len(), 8, "failed connections still connected");
}

// ---------------------------------------------------------------- phases

#[test]
fn phases_are_ordered_and_measure_the_server_delay() {
    let _serial = serial();
    let server = TestServer::spawn(2, slow(Duration::from_millis(20)));
    let mut cfg = config(server.addr, 2, Stop::Connections(20));
    cfg.threads = 2;
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 20, "{r:?}");
    let p50 = |h: &hdrhistogram::Histogram<u64>| h.value_at_quantile(0.5);
    for (who, ph) in r
        .per_worker
        .iter()
        .map(|w| (w.id.as_str(), &w.phases))
        .chain([("all", &r.phases)])
    {
        let (c, t, tot, unc) = (
            p50(&ph.connect),
            p50(&ph.ttfb),
            p50(&ph.total),
            p50(&ph.total_uncorrected),
        );
        assert!(c <= t && t <= tot, "{who}: connect {c} ttfb {t} total {tot}");
        // The request goes out once connected, and the server answers 20 ms
        // after reading it: every connection's ttfb is at least its connect
        // time plus 20 ms (so connect leaves the server's delay out), and
        // the medians keep that order (less 1% for the histograms).
        assert!(t >= 20_000, "{who}: ttfb p50 {t} us");
        assert!(t + c / 100 >= c + 20_000, "{who}: connect p50 {c} us, ttfb p50 {t} us");
        // Closed loop: the intended start is the actual start.
        assert_eq!(tot, unc, "{who}");
    }
}

// ---------------------------------------------------------------- intervals

fn collect_intervals(rx: &std::sync::mpsc::Receiver<IntervalHist>) -> Vec<IntervalHist> {
    rx.try_iter().collect()
}

#[test]
fn interval_histograms_cover_every_request_without_gaps() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let (tx, rx) = std::sync::mpsc::channel();
    let every = Duration::from_millis(100);
    let mut cfg = open_config(
        server.addr,
        1000.0,
        Arrivals::Constant,
        Stop::Duration(Duration::from_secs(1)),
    );
    cfg.threads = 2;
    cfg.intervals = Some(Intervals { every, sink: tx });
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    server.shutdown();
    check_invariants(&r);
    let all = check_open_duration_run(&r, &cfg, took);
    assert_eq!(all.len(), 1000);
    assert_eq!((r.completed, r.errors.total()), (r.started, 0), "{r:?}");
    assert!(r.run_start <= std::time::SystemTime::now());
    let got = collect_intervals(&rx);
    let mut merged = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for h in &got {
        merged.add(&h.total).unwrap();
    }
    assert_eq!(merged.len(), r.requests);
    let mut lasts = Vec::new();
    for thread in 0..cfg.threads {
        let mine: Vec<&IntervalHist> = got.iter().filter(|h| h.thread == thread).collect();
        let idx: Vec<u64> = mine.iter().map(|h| h.index).collect();
        let want: Vec<u64> = (0..idx.len() as u64).collect();
        assert_eq!(idx, want, "thread {thread}: contiguous from 0, in order");
        for h in &mine {
            assert_eq!(h.start, every * h.index as u32);
            if h.index + 1 < mine.len() as u64 {
                assert_eq!(h.length, every);
            } else {
                assert!(h.length > Duration::ZERO && h.length <= every, "{h:?}");
            }
        }
        // A response counts in the interval its last byte came in. So the
        // responses in intervals 0..=i came from arrivals due before the end
        // of interval i (every 2 ms from t ms on this thread: about 50 per
        // interval), and include every one due early enough to have been
        // answered by then within the run's largest corrected latency, but
        // for those dropped.
        let open = cfg.open.as_ref().unwrap();
        let mine_due: Vec<Duration> = Schedule::new(open, cfg.seed, thread, cfg.threads, cfg.stop).collect();
        let mut so_far = 0;
        for h in &mine {
            so_far += h.total.len();
            let end = h.start + every;
            let due = mine_due.iter().filter(|&&a| a < end).count() as u64;
            let answerable = mine_due.iter().filter(|&&a| a + max_total(&r) <= end).count() as u64;
            assert!(
                so_far <= due && so_far + r.dropped >= answerable,
                "thread {thread}: {so_far} responses by {end:?}, {due} due, {answerable} answerable, {} dropped: {h:?}",
                r.dropped
            );
        }
        lasts.push(mine.len());
    }
    // Every thread sends the intervals up to the one the run ended in: the
    // same number for both, at least the 10 the arrivals span (the last is
    // due at 999 ms), at most as many as the clock around the run spans.
    assert_eq!(lasts[0], lasts[1]);
    let spanned = (took.as_nanos() - 1) / every.as_nanos() + 1;
    assert!(lasts[0] >= 10 && lasts[0] as u128 <= spanned, "{lasts:?} in {took:?}");
}

#[test]
fn no_record_counts_but_records_nothing() {
    let _serial = serial();
    let answered = counters(2);
    let server = TestServer::spawn(
        2,
        keep_alive(answered.clone(), 2, 100, |k| ka_response(&k.to_string(), "x")),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let mut cfg = config(server.addr, 4, Stop::Connections(60));
    cfg.threads = 2;
    cfg.requests_per_conn = 2;
    cfg.record = false;
    cfg.intervals = Some(Intervals {
        every: Duration::from_millis(20),
        sink: tx,
    });
    let r = loadgen::run(&cfg).unwrap();
    let (conns, _) = server.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.requests, r.errors.total()), (60, 120, 0), "{r:?}");
    for k in 0..2 {
        let w = r.worker(&k.to_string());
        assert_eq!(w.map_or(0, |w| w.completed), conns[k]);
        assert_eq!(w.map_or(0, |w| w.requests), answered[k].load(Ordering::SeqCst));
    }
    assert!(r.latency.is_empty() && r.phases.is_empty(), "{r:?}");
    assert!(r.per_worker.iter().all(|w| w.latency.is_empty() && w.phases.is_empty()));
    let got = collect_intervals(&rx);
    assert!(!got.is_empty() && got.iter().all(|h| h.total.is_empty()));
    // The per-worker interval counts are kept all the same.
    let sums = interval_worker_sums(&got, 2);
    for w in &r.per_worker {
        assert_eq!(sums.get(&w.id), Some(&(w.completed, w.requests)), "{w:?}");
    }
    assert_eq!(sums.len(), r.per_worker.len(), "{sums:?}");
}

/// Sums every interval's per-worker counts, all threads: id -> (connections,
/// requests). Checks that each thread sent intervals 0, 1, 2, ... (the same
/// number for every thread) and no zero or duplicate worker entries.
fn interval_worker_sums(got: &[IntervalHist], threads: usize) -> BTreeMap<String, (u64, u64)> {
    let mut sums = BTreeMap::new();
    let mut lens = Vec::new();
    for t in 0..threads {
        let idx: Vec<u64> = got.iter().filter(|h| h.thread == t).map(|h| h.index).collect();
        assert_eq!(idx, (0..idx.len() as u64).collect::<Vec<_>>(), "thread {t}");
        lens.push(idx.len());
    }
    assert!(lens.iter().all(|&n| n == lens[0]), "{lens:?}");
    for h in got {
        let mut ids: Vec<&str> = h.workers.iter().map(|w| w.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), h.workers.len(), "{h:?}");
        for w in &h.workers {
            assert!(w.connections + w.requests > 0, "{h:?}");
            let s = sums.entry(w.id.clone()).or_insert((0, 0));
            s.0 += w.connections;
            s.1 += w.requests;
        }
    }
    sums
}

#[test]
fn interval_worker_counts_match_the_report_and_the_server() {
    let _serial = serial();
    for k_req in [1u32, 3] {
        let answered = counters(2);
        let server = if k_req == 1 {
            TestServer::ok(2)
        } else {
            TestServer::spawn(
                2,
                keep_alive(answered.clone(), k_req as usize, 100, |k| {
                    ka_response(&k.to_string(), "ok")
                }),
            )
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let every = Duration::from_millis(20);
        let d = Duration::from_millis(300);
        let mut cfg = config(server.addr, 4, Stop::Duration(d));
        cfg.threads = 2;
        cfg.requests_per_conn = k_req;
        cfg.intervals = Some(Intervals { every, sink: tx });
        let t = Instant::now();
        let r = loadgen::run(&cfg).unwrap();
        let took = t.elapsed();
        let (conns, _) = server.shutdown();
        check_invariants(&r);
        assert_eq!(r.errors.total(), 0, "{r:?}");
        assert_eq!(r.requests, u64::from(k_req) * r.completed, "{r:?}");
        let got = collect_intervals(&rx);
        // The run cannot end before its 300 ms: at least 15 intervals of
        // 20 ms per thread (plus the drain), and no more than the clock
        // around the run spans.
        let per_thread = got.iter().filter(|h| h.thread == 0).count();
        let spanned = (took.as_nanos() - 1) / every.as_nanos() + 1;
        assert!(
            per_thread >= 15 && per_thread as u128 <= spanned,
            "{per_thread} intervals in {took:?}"
        );
        let sums = interval_worker_sums(&got, 2);
        // A connection counts in the interval it ended in. Every slot has a
        // connection in flight until the 300 ms are over (the next starts
        // as one ends), and those end after it: in interval 15 or later.
        // needs a quiet machine: only in that each thread must get to run,
        // and complete one connection, before the 300 ms are over.
        let end_index = (d.as_nanos() / every.as_nanos()) as u64;
        for thread in 0..cfg.threads {
            let with_conns: Vec<u64> = got
                .iter()
                .filter(|h| h.thread == thread && h.workers.iter().any(|w| w.connections > 0))
                .map(|h| h.index)
                .collect();
            // Spread over the run, not all in one interval.
            assert!(
                with_conns.first().is_some_and(|&i| i < end_index)
                    && with_conns.last().is_some_and(|&i| i >= end_index),
                "thread {thread}: connections in intervals {with_conns:?}"
            );
        }
        // Every worker of the report, and no other, with its exact counts.
        let ids: Vec<&String> = sums.keys().collect();
        let mut want: Vec<&String> = r.per_worker.iter().map(|w| &w.id).collect();
        want.sort();
        assert_eq!(ids, want);
        for w in &r.per_worker {
            assert_eq!(sums[&w.id], (w.completed, w.requests), "{w:?}");
        }
        // And what the server counted.
        for (k, &n) in conns.iter().enumerate() {
            let (c, q) = sums.get(&k.to_string()).copied().unwrap_or((0, 0));
            assert_eq!(c, n, "worker {k}: server {conns:?}, intervals {sums:?}");
            if k_req > 1 {
                assert_eq!(q, answered[k].load(Ordering::SeqCst), "worker {k}");
                assert_eq!(q, 3 * c, "worker {k}");
            } else {
                assert_eq!(q, n, "worker {k}");
            }
        }
    }
}

// ---------------------------------------------------------------- binary, open loop

#[test]
fn binary_open_loop_prints_phases_and_arrivals() {
    let _serial = serial();
    let answered = counters(1);
    let server = TestServer::spawn(1, keep_alive(answered, 3, 100, |k| ka_response(&k.to_string(), "ok")));
    let target = server.addr.to_string();
    let out = loadgen_bin(&[
        "--target",
        &target,
        "--rate",
        "400",
        "--arrivals",
        "poisson",
        "--seed",
        "3",
        "--connections",
        "40",
        "--requests-per-conn",
        "3",
        "--sources",
        "127.0.0.1-127.0.0.2",
    ]);
    server.shutdown();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for phase in ["connect ", "ttfb ", "total ", "total_uncorrected "] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(phase))
            .unwrap_or_else(|| panic!("{phase}: {stdout}"));
        let p50: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(p50 > 0, "{line}");
    }
    assert!(
        stdout.contains("arrivals: poisson at 400/s (seed 3): 40 scheduled, 40 started"),
        "{stdout}"
    );
    assert!(stdout.contains("0 late, 0 dropped"), "{stdout}");
    assert!(
        stdout.contains("requests: 120 over 40 connections (3 per connection)"),
        "{stdout}"
    );
    let worker = stdout.lines().find(|l| l.starts_with("worker 0 ")).unwrap();
    assert_eq!(
        worker.split_whitespace().collect::<Vec<_>>()[2..5],
        ["40", "100.00%", "120"],
        "{worker}"
    );

    let out = loadgen_bin(&["--target", &target, "--rate", "10", "-n", "1", "--no-record"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("latency: not recorded"), "{stdout}");
}

#[test]
fn binary_rejects_bad_open_loop_input_with_exit_2() {
    let _serial = serial();
    for (bad, needle) in [
        (&["--rate", "100", "-c", "4"][..], "cannot be used with"),
        (&["--rate", "0"], "rate 0"),
        (&["--rate", "abc"], "abc"),
        (&["--rate", "100", "--arrivals", "uniform"], "uniform"),
        (&["--rate", "100", "--max-inflight", "1", "-t", "2"], "max-inflight 1"),
        (&["-c", "1", "--requests-per-conn", "0"], "requests-per-conn 0"),
        (&["-c", "1", "--sources", "127.0.0.9-127.0.0.1"], "127.0.0.9 is after"),
        (&["-c", "1", "--sources", "10.0.0.1"], "not on loopback"),
        (&["-c", "1", "--max-inflight", "5"], "--rate"),
        (&[], "--concurrency"),
    ] {
        let mut args = vec!["--target", "127.0.0.1:9"];
        args.extend_from_slice(bad);
        let out = loadgen_bin(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(first.starts_with("error: "), "{bad:?}: {first}");
        assert!(stderr.contains(needle), "{bad:?}: {stderr}");
    }
}
