//! Loopback integration tests: the engine and the binary against tiny
//! in-test servers on 127.0.0.1 (std::net, one thread per "worker").
//!
//! Each server thread accepts on a shared listener, reads the request up to
//! the blank line, answers as told, counts what it answered, and closes. The
//! counts are compared with what the load generator attributed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgen::{Config, Report, Stop};

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
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());
        let peers = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..workers)
            .map(|k| {
                let l = listener.try_clone().unwrap();
                let (stop, counts, peers, handler) =
                    (stop.clone(), counts.clone(), peers.clone(), handler.clone());
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
        let counts = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect();
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
    assert_eq!(r.started, r.completed + r.errors.total(), "{r:?}");
    assert_eq!(r.worker_counts().iter().sum::<u64>(), r.completed, "{r:?}");
    assert_eq!(r.latency.len(), r.completed, "{r:?}");
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
    let server = TestServer::ok(4);
    let mut cfg = config(server.addr, 8, Stop::Connections(2000));
    cfg.threads = 2;
    let r = loadgen::run(&cfg).unwrap();
    let (counts, _) = server.shutdown();
    check_invariants(&r);
    assert_eq!(
        (r.started, r.completed, r.errors.total()),
        (2000, 2000, 0),
        "{r:?}"
    );
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
    let server = TestServer::spawn(
        1,
        respond(|_| b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nno!".to_vec()),
    );
    let r = loadgen::run(&config(server.addr, 2, Stop::Connections(10))).unwrap();
    server.shutdown();
    check_invariants(&r);
    assert_eq!(r.completed, 10, "{r:?}");
    assert_eq!(r.per_worker.len(), 1);
    assert_eq!(
        (r.per_worker[0].id.as_str(), r.per_worker[0].completed),
        ("?", 10)
    );
}

#[test]
fn eof_delimited_and_large_bodies_complete() {
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
    let addr = closed_port();
    let mut cfg = config(addr, 4, Stop::Connections(20));
    cfg.threads = 2;
    let r = loadgen::run(&cfg).unwrap();
    check_invariants(&r);
    assert_eq!(
        (r.started, r.completed, r.errors.refused),
        (20, 0, 20),
        "{r:?}"
    );
    assert!(r.per_worker.is_empty());
}

#[test]
fn garbage_and_truncated_responses_are_malformed() {
    let garbage = TestServer::spawn(2, respond(|_| b"this is not http\r\n\r\n".to_vec()));
    let r = loadgen::run(&config(garbage.addr, 3, Stop::Connections(12))).unwrap();
    garbage.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.malformed), (0, 12), "{r:?}");

    let short = TestServer::spawn(
        1,
        respond(|_| {
            b"HTTP/1.1 200 OK\r\nx-worker: 1\r\ncontent-length: 100\r\n\r\nonly ten b".to_vec()
        }),
    );
    let r = loadgen::run(&config(short.addr, 2, Stop::Connections(6))).unwrap();
    short.shutdown();
    check_invariants(&r);
    assert_eq!((r.completed, r.errors.malformed), (0, 6), "{r:?}");
}

#[test]
fn reset_is_its_own_class() {
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
    assert!(
        took >= Duration::from_millis(400),
        "two rounds of 200 ms: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn cancel_drains_in_flight_connections_within_the_timeout() {
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
    assert_eq!(r.errors.timeout, r.started, "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn invalid_config_is_rejected_before_any_connection() {
    let cfg = Config::new("192.0.2.1:80".parse().unwrap(), 1, Stop::Connections(1));
    let e = loadgen::run(&cfg).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("192.0.2.1:80"), "{e}");
}

// ---------------------------------------------------------------- sources

#[test]
fn source_addresses_rotate() {
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
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn binary_prints_the_table_and_exits_0() {
    let server = TestServer::ok(2);
    let target = server.addr.to_string();
    let out = loadgen_bin(&[
        "--target",
        &target,
        "--concurrency",
        "4",
        "--connections",
        "200",
    ]);
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
        assert_eq!(
            line.split_whitespace().nth(2),
            Some(n.to_string().as_str()),
            "{line}"
        );
    }
    assert!(stdout.contains("completed: 200 of 200 started"), "{stdout}");
    assert!(stdout.contains("errors: none"), "{stdout}");
    assert!(
        stdout.contains("conn/s: ") && stdout.contains("jain "),
        "{stdout}"
    );
}

#[test]
fn binary_exits_1_when_connections_fail() {
    let target = closed_port().to_string();
    let out = loadgen_bin(&["--target", &target, "-c", "2", "-n", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("errors: 5 (refused 5)"), "{stdout}");
}

#[test]
fn binary_rejects_bad_input_with_exit_2() {
    let out = loadgen_bin(&["--target", "10.0.0.1:80", "--concurrency", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: target 10.0.0.1:80 is not on loopback: only 127.0.0.0/8 and ::1 may be loaded"
    );
    for bad in [
        &["--target", "127.0.0.1:80", "-c", "1", "--duration", "10x"][..],
        &[
            "--target",
            "127.0.0.1:80",
            "-c",
            "1",
            "-n",
            "5",
            "--duration",
            "1s",
        ],
        &["--target", "127.0.0.1:80", "-c", "0"],
        &["--target", "127.0.0.1:80", "-c", "2", "--threads", "3"],
        &[
            "--target",
            "127.0.0.1:80",
            "-c",
            "1",
            "--source",
            "10.1.1.1",
        ],
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
