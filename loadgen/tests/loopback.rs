//! Loopback integration tests: the engine and the binary against tiny
//! in-test servers on 127.0.0.1 (std::net, one thread per "worker").
//!
//! Each server thread accepts on a shared listener, reads the request up to
//! the blank line, answers as told, counts what it answered, and closes (or,
//! for keep-alive, reads the next request). The counts are compared with what
//! the load generator attributed.
//!
//! The tests run one at a time ([`serial`]): several of them check rates and
//! latencies, which other tests running beside them on a 2-core machine
//! would disturb.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgen::{Arrivals, Attribution, Config, IntervalHist, Intervals, OpenLoop, Report, Stop};

/// Holds the lock that makes the tests of this binary run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
    let mut cfg = config(server.addr, 4, Stop::Duration(Duration::from_millis(300)));
    cfg.threads = 2;
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(r.completed > 0 && r.errors.total() == 0, "{r:?}");
    assert_eq!(counts.iter().sum::<u64>(), r.completed);
}

#[test]
fn cancel_stops_a_long_run() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let cfg = config(server.addr, 4, Stop::Duration(Duration::from_secs(60)));
    let cancel = cfg.cancel.clone();
    let t = Instant::now();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cancel.store(true, Ordering::SeqCst);
    });
    let r = loadgen::run(&cfg).unwrap();
    canceller.join().unwrap();
    server.shutdown();
    check_invariants(&r);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(r.completed > 0, "{r:?}");
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
    assert!(r.elapsed >= Duration::from_millis(90), "{:?}", r.elapsed);
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
    assert!(took >= Duration::from_millis(400), "two rounds of 200 ms: {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
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
    cfg.timeout = Duration::from_millis(300);
    cfg.cancel.store(false, Ordering::SeqCst);
    let cancel = cfg.cancel.clone();
    let t = Instant::now();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        cancel.store(true, Ordering::SeqCst);
    });
    let r = loadgen::run(&cfg).unwrap();
    canceller.join().unwrap();
    server.shutdown();
    check_invariants(&r);
    assert!(r.started >= 2, "{r:?}");
    // The server never answers: each connection ends by its timeout or,
    // once cancelled, by the grace; none completes.
    assert_eq!(r.errors.timeout + r.errors.cancelled, r.started, "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
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
    for (k, n) in counts.iter().enumerate() {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("worker {k} ")))
            .expect(&stdout);
        assert_eq!(line.split_whitespace().nth(2), Some(n.to_string().as_str()), "{line}");
    }
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
        for (k, n) in counts.iter().enumerate() {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("worker w{k} ")))
                .expect(&stdout);
            assert_eq!(line.split_whitespace().nth(2), Some(n.to_string().as_str()), "{line}");
        }
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

#[test]
fn open_loop_constant_rate_is_within_one_percent() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let mut cfg = open_config(
        server.addr,
        2000.0,
        Arrivals::Constant,
        Stop::Duration(Duration::from_secs(2)),
    );
    cfg.threads = 2;
    let r = loadgen::run(&cfg).unwrap();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    // Arrivals every 0.5 ms from 0 to 1999.5 ms.
    assert_eq!((r.scheduled, r.started, r.dropped), (4000, 4000, 0), "{r:?}");
    assert_eq!((r.completed, r.errors.total()), (4000, 0), "{r:?}");
    assert_eq!(counts.iter().sum::<u64>(), 4000);
    let rate = achieved_rate(&r);
    assert!((rate - 2000.0).abs() <= 20.0, "achieved {rate:.1}/s: {r:?}");
    // Not saturated: the corrected latency stays near the uncorrected one.
    let (c, u) = (
        r.phases.total.value_at_quantile(0.5),
        r.phases.total_uncorrected.value_at_quantile(0.5),
    );
    assert!(c >= u && c < u + 5_000, "corrected p50 {c} us, uncorrected {u} us");
    assert!(r.late <= 40, "64 slots are plenty at 2000/s: {r:?}");
}

#[test]
fn open_loop_poisson_count_is_within_three_sd() {
    let _serial = serial();
    let server = TestServer::ok(2);
    let mut cfg = open_config(
        server.addr,
        2000.0,
        Arrivals::Poisson,
        Stop::Duration(Duration::from_secs(2)),
    );
    cfg.threads = 2;
    cfg.seed = 12345;
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    // A Poisson count over d seconds at rate R: mean R*d, sd sqrt(R*d).
    let (mean, sd) = (4000.0, 4000f64.sqrt());
    let n = r.scheduled as f64;
    assert!(
        (n - mean).abs() <= 3.0 * sd,
        "{n} arrivals, want {mean} +- {:.0}",
        3.0 * sd
    );
    assert_eq!(
        (r.started, r.dropped, r.completed),
        (r.scheduled, 0, r.scheduled),
        "{r:?}"
    );
    let rate = achieved_rate(&r);
    assert!((rate - 2000.0).abs() <= 3.0 * sd / 2.0 + 20.0, "achieved {rate:.1}/s");

    // The same seed gives the same schedule, so the same count.
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
    assert_eq!(a.scheduled, b.scheduled);
    assert!(a.scheduled > 200 && a.scheduled < 400, "{a:?}");
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
    let server = TestServer::spawn(1, slow(Duration::from_millis(50)));
    let mut cfg = open_config(server.addr, 100.0, Arrivals::Constant, Stop::Connections(12));
    cfg.threads = 1;
    cfg.open.as_mut().unwrap().max_inflight = 1;
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    let took = t.elapsed();
    check_invariants(&r);
    assert_eq!(
        (r.scheduled, r.started, r.dropped, r.completed),
        (12, 12, 0, 12),
        "{r:?}"
    );
    // All but the first found the slot busy.
    assert!(r.late >= 10, "{r:?}");
    let corrected = r.phases.total.value_at_quantile(0.5);
    let uncorrected = r.phases.total_uncorrected.value_at_quantile(0.5);
    assert!((50_000..150_000).contains(&uncorrected), "{uncorrected} us");
    // The k-th waits about k*(50 - 10) ms for its slot: the median about 240 ms.
    assert!(
        corrected > uncorrected + 100_000,
        "corrected {corrected} us, uncorrected {uncorrected} us"
    );
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Shorter patience than the backlog: arrivals that waited longer than
    // the timeout, or still waited at the end, are dropped, never started.
    cfg.stop = Stop::Duration(Duration::from_millis(400));
    cfg.timeout = Duration::from_millis(150);
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!(r.scheduled, 40, "{r:?}");
    assert!(r.dropped >= 20, "{r:?}");
    assert!(r.started >= 5 && r.late > 0, "{r:?}");
    assert_eq!(r.scheduled, r.started + r.dropped);
}

#[test]
fn open_loop_cancel_drops_what_waits() {
    let _serial = serial();
    let server = TestServer::spawn(1, slow(Duration::from_millis(100)));
    let mut cfg = open_config(
        server.addr,
        200.0,
        Arrivals::Constant,
        Stop::Duration(Duration::from_secs(30)),
    );
    cfg.threads = 1;
    cfg.open.as_mut().unwrap().max_inflight = 1;
    let cancel = cfg.cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(250));
        cancel.store(true, Ordering::SeqCst);
    });
    let t = Instant::now();
    let r = loadgen::run(&cfg).unwrap();
    canceller.join().unwrap();
    server.shutdown();
    check_invariants(&r);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // About 50 arrivals came due in 250 ms; about 3 could start.
    assert!((40..=60).contains(&r.scheduled), "{r:?}");
    assert!(r.dropped >= 30 && r.started >= 2, "{r:?}");
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
        assert!(c < 5_000, "{who}: connect p50 {c} us");
        assert!(t >= 20_000, "{who}: ttfb p50 {t} us");
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
    let r = loadgen::run(&cfg).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 1000, "{r:?}");
    assert!(r.run_start <= std::time::SystemTime::now());
    let got = collect_intervals(&rx);
    let mut merged = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for h in &got {
        merged.add(&h.total).unwrap();
    }
    assert_eq!(merged.len(), r.requests);
    let mut lasts = Vec::new();
    for t in 0..2 {
        let mine: Vec<&IntervalHist> = got.iter().filter(|h| h.thread == t).collect();
        let idx: Vec<u64> = mine.iter().map(|h| h.index).collect();
        let want: Vec<u64> = (0..idx.len() as u64).collect();
        assert_eq!(idx, want, "thread {t}: contiguous from 0, in order");
        for h in &mine {
            assert_eq!(h.start, every * h.index as u32);
            if h.index + 1 < mine.len() as u64 {
                assert_eq!(h.length, every);
            } else {
                assert!(h.length > Duration::ZERO && h.length <= every, "{h:?}");
            }
        }
        // Each thread sent about 50 requests per interval.
        let full = mine[3].total.len();
        assert!((30..=70).contains(&full), "{:?}", mine[3]);
        lasts.push(mine.len());
    }
    // 1 s of arrivals and the drain: 10 or 11 intervals, the same for both.
    assert_eq!(lasts[0], lasts[1]);
    assert!((10..=12).contains(&lasts[0]), "{lasts:?}");
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
        let mut cfg = config(server.addr, 4, Stop::Duration(Duration::from_millis(300)));
        cfg.threads = 2;
        cfg.requests_per_conn = k_req;
        cfg.intervals = Some(Intervals { every, sink: tx });
        let r = loadgen::run(&cfg).unwrap();
        let (conns, _) = server.shutdown();
        check_invariants(&r);
        assert_eq!(r.errors.total(), 0, "{r:?}");
        assert!(r.completed >= 20, "{r:?}");
        assert_eq!(r.requests, u64::from(k_req) * r.completed, "{r:?}");
        let got = collect_intervals(&rx);
        // 300 ms of 20 ms intervals (plus the drain).
        let per_thread = got.iter().filter(|h| h.thread == 0).count();
        assert!(per_thread >= 15, "{per_thread} intervals");
        let sums = interval_worker_sums(&got, 2);
        // Spread over the run, not all in one interval.
        let busy = got.iter().filter(|h| !h.workers.is_empty()).count();
        assert!(busy >= 10, "{busy} intervals with counts of {}", got.len());
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
