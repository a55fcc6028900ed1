//! What a worker does with one connection: read each HTTP/1.1 request, answer
//! `200 OK` with `x-worker: <index>` and the body `hello nodejs` (the seed's),
//! and close when the client asks to (or at once for HTTP/1.0 without
//! keep-alive).
//!
//! Every request is read in full before answering: closing a socket with
//! unread bytes sends a RST, which the client would report as a reset (the
//! seed's own demo has that bug). The accepted socket is blocking; a worker
//! serves one connection at a time, so the order in which the kernel hands out
//! connections is what the counters record. With `--worker-concurrency K > 1`
//! a worker serves up to K connections from an event loop instead
//! ([`crate::event_loop`]), with the same request parsing and responses
//! (the helpers below are shared by both paths).
//!
//! Every response also carries two stamps of CLOCK_MONOTONIC, in
//! nanoseconds: `x-accepted-ns`, when the worker took the connection, and
//! `x-responded-ns`, when it began writing this response. The load generator
//! reads the same clock on the same machine, so it can split a connection's
//! latency into the time it waited to be taken (the `queue` phase) and the
//! worker's `service`. The stamps are fixed-width (20 digits, zero-padded),
//! written in place into the canned response, so its length never changes.

use std::cell::{Ref, RefCell};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::counters::{Header, Slot};

/// The body every worker answers with: the seed's.
pub const BODY: &str = "hello nodejs";

use records::names::{ACCEPTED_HEADER, RESPONDED_HEADER};

/// Digits of a stamp: every u64 fits, zero-padded.
const STAMP_DIGITS: usize = 20;

/// Largest request head a worker accepts.
pub(crate) const MAX_REQUEST: usize = 8192;

/// An injected pause: the worker stops serving from `at` to `at + length`
/// after the run's epoch (a GC pause, a blocking call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub at: Duration,
    pub length: Duration,
}

/// Time a worker spends on each request before answering.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Service {
    /// Answer at once.
    #[default]
    None,
    /// Busy CPU for this long.
    Spin(Duration),
    /// Sleep this long (waiting on something else).
    Sleep(Duration),
    /// Sleep an exponentially distributed time with this mean.
    Exp(Duration),
}

impl Service {
    /// The same kind of service, `factor` times longer.
    pub fn scaled(self, factor: f64) -> Service {
        let s = |d: Duration| d.mul_f64(factor);
        match self {
            Service::None => Service::None,
            Service::Spin(d) => Service::Spin(s(d)),
            Service::Sleep(d) => Service::Sleep(s(d)),
            Service::Exp(d) => Service::Exp(s(d)),
        }
    }
}

impl std::str::FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Service, String> {
        if s == "0" || s == "none" {
            return Ok(Service::None);
        }
        let (kind, d) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not a service time (0, spin:50us, sleep:1ms or exp:200us)"))?;
        let d = records::units::parse_duration(d)?;
        match kind {
            "spin" => Ok(Service::Spin(d)),
            "sleep" => Ok(Service::Sleep(d)),
            "exp" => Ok(Service::Exp(d)),
            _ => Err(format!("'{kind}' in '{s}' is not spin, sleep or exp")),
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |d: &Duration| format!("{}us", d.as_micros());
        match self {
            Service::None => f.write_str("0"),
            Service::Spin(d) => write!(f, "spin:{}", us(d)),
            Service::Sleep(d) => write!(f, "sleep:{}", us(d)),
            Service::Exp(d) => write!(f, "exp:{}", us(d)),
        }
    }
}

/// How every worker of a fleet behaves besides its model: the service time,
/// one slow worker, one stall, CPU pinning.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkerPlan {
    pub service: Service,
    /// (worker, factor): that worker's service time is `factor` times longer.
    pub slow: Option<(usize, f64)>,
    pub stall: Option<(usize, Stall)>,
    /// Pin worker i to CPU i modulo the CPU count.
    pub pin: bool,
    /// Connections a worker may have open at once (0 and 1: one at a time,
    /// served blocking; more: an event loop).
    pub concurrency: usize,
    /// Thread fleets of the epoll models: every thread waits on one epoll set
    /// instead of its own.
    pub shared_epoll_set: bool,
    /// Replacement workers to fork up front, for injected faults
    /// (`--respawn`, `--rolling-restart`).
    pub spares: usize,
    /// listen(2) backlog of the socket a `reuseport` replacement opens.
    pub backlog: i32,
}

/// The signal the master sends with [`Slot::retire`] to wake a worker that
/// blocks in accept or epoll_wait (a no-op handler without SA_RESTART).
pub const RETIRE_SIGNAL: i32 = libc::SIGUSR2;

/// Everything a worker's loop needs besides its endpoint.
pub struct WorkerCtx<'a> {
    pub index: usize,
    pub slot: Slot<'a>,
    pub header: Header<'a>,
    pub stall: Option<Stall>,
    /// The epoll set every worker thread shares (`--shared-epoll-set`).
    pub shared_epoll: Option<&'a sys::Epoll>,
    service: Service,
    concurrency: usize,
    rng: std::cell::RefCell<records::rng::Xoshiro256pp>,
    keep_alive: RefCell<Stamped>,
    close: RefCell<Stamped>,
}

impl<'a> WorkerCtx<'a> {
    /// Called in the worker's own process or thread: it also records the
    /// worker's thread id.
    pub fn new(index: usize, slot: Slot<'a>, header: Header<'a>, plan: &WorkerPlan) -> Self {
        slot.tid
            .store(sys::gettid() as u64, std::sync::atomic::Ordering::Release);
        let service = match plan.slow {
            Some((w, factor)) if w == index => plan.service.scaled(factor),
            _ => plan.service,
        };
        WorkerCtx {
            index,
            slot,
            header,
            stall: plan.stall.filter(|(w, _)| *w == index).map(|(_, s)| s),
            shared_epoll: None,
            service,
            concurrency: plan.concurrency.max(1),
            rng: std::cell::RefCell::new(records::rng::Xoshiro256pp::new(0x5eed, index as u64)),
            keep_alive: RefCell::new(Stamped::new(index, true)),
            close: RefCell::new(Stamped::new(index, false)),
        }
    }

    /// Exits the worker, between connections, if the master asked it to retire
    /// (a rolling restart): its listening socket closes with it, gracefully
    /// in that no connection it took is cut. The master's [`RETIRE_SIGNAL`]
    /// interrupts a blocking accept or epoll_wait so this is checked at once.
    pub fn retire_if_asked(&self) {
        if self.slot.retire.load(std::sync::atomic::Ordering::Acquire) != 0 {
            sys::exit_now(0);
        }
    }

    /// Connections this worker may have open at once (at least 1). Above 1
    /// the model serves them from an [`EventLoop`](crate::event_loop::EventLoop).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Spends the service time of one request.
    fn work(&self) {
        if let Some(d) = self.begin_work() {
            std::thread::sleep(d);
        }
    }

    /// Starts the service time of one request: CPU work (`spin:`) is done
    /// here and now; a wait (`sleep:`, `exp:`) is returned for the caller to
    /// spend, by sleeping or, in an event loop, as a deadline.
    pub(crate) fn begin_work(&self) -> Option<Duration> {
        match self.service {
            Service::None => None,
            Service::Spin(d) => {
                let start = std::time::Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
                None
            }
            Service::Sleep(d) => Some(d),
            Service::Exp(mean) => {
                let secs = self.rng.borrow_mut().next_exp(mean.as_secs_f64());
                Some(Duration::from_secs_f64(secs))
            }
        }
    }

    /// The canned response, keeping the connection or closing it, stamped
    /// with when the connection was taken and when this response began.
    pub(crate) fn response(&self, keep_alive: bool, accepted_ns: u64, responded_ns: u64) -> Ref<'_, [u8]> {
        let cell = if keep_alive { &self.keep_alive } else { &self.close };
        cell.borrow_mut().stamp(accepted_ns, responded_ns);
        Ref::map(cell.borrow(), |s| s.bytes.as_slice())
    }

    /// Takes one connection: counts it, pauses if a stall is due, serves it.
    pub fn take(&self, conn: OwnedFd) {
        let accepted_ns = self.opened();
        if self.serve(&conn, accepted_ns).is_err() {
            Slot::bump(self.slot.errors);
        }
        drop(conn);
        self.closed();
    }

    /// Counts a connection taken (and open), then pauses if a stall is due.
    /// Returns when it was taken (CLOCK_MONOTONIC ns, before any stall: a
    /// stall is spent serving it).
    pub(crate) fn opened(&self) -> u64 {
        let now = sys::monotonic_ns();
        Slot::bump(self.slot.accepted);
        Slot::bump(self.slot.active);
        self.stall_if_due();
        now
    }

    /// Counts a connection closed (after its descriptor was dropped).
    pub(crate) fn closed(&self) {
        Slot::drop_one(self.slot.active);
        Slot::bump(self.slot.finished);
    }

    /// Sleeps through the stall window if now falls inside it (once).
    fn stall_if_due(&self) {
        let Some(stall) = self.stall else { return };
        if self.slot.stall_from.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            return;
        }
        let epoch = self.header.epoch_ns.load(std::sync::atomic::Ordering::Acquire);
        if epoch == 0 {
            return;
        }
        let now = sys::monotonic_ns().saturating_sub(epoch);
        let (from, to) = (stall.at.as_nanos() as u64, (stall.at + stall.length).as_nanos() as u64);
        if now >= from && now < to {
            self.slot
                .stall_from
                .store(now + 1, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_nanos(to - now));
            let end = sys::monotonic_ns().saturating_sub(epoch);
            self.slot.stall_to.store(end + 1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Answers requests until the client asks to close or goes away.
    fn serve(&self, conn: &OwnedFd, accepted_ns: u64) -> io::Result<()> {
        let mut buf = [0u8; MAX_REQUEST];
        // Bytes [start, len) of `buf` are read but not yet consumed.
        let (mut start, mut len) = (0usize, 0usize);
        let mut served = 0u64;
        loop {
            let (keep_alive, mut body) = loop {
                if let Some(request) = take_request(&buf, &mut start, len) {
                    break request;
                }
                compact(&mut buf, &mut start, &mut len)?;
                let n = read_retry(conn, &mut buf[len..])?;
                if n == 0 {
                    return if served > 0 && len == 0 {
                        Ok(()) // the client closed between requests
                    } else {
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "client closed inside a request",
                        ))
                    };
                }
                len += n;
            };
            // Skip the rest of the body (if any) so that closing never sends a RST.
            while body > 0 {
                let n = read_retry(conn, &mut buf[..body.min(MAX_REQUEST)])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "client closed inside a body",
                    ));
                }
                body -= n;
                start = 0;
                len = 0;
            }
            self.work();
            let response = self.response(keep_alive, accepted_ns, sys::monotonic_ns());
            if keep_alive {
                write_all(conn, &response, sys::write)?;
            } else {
                // The last response: held back and sent with the FIN of the
                // close that follows, one segment instead of two.
                write_all(conn, &response, sys::send_more)?;
            }
            drop(response);
            Slot::bump(self.slot.requests);
            served += 1;
            if !keep_alive {
                return Ok(());
            }
            if start == len {
                start = 0;
                len = 0;
            }
        }
    }
}

/// A worker's canned response, its stamps zero.
pub fn response(worker: usize, keep_alive: bool) -> Vec<u8> {
    let zero = "0".repeat(STAMP_DIGITS);
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-worker: {worker}\r\n{ACCEPTED_HEADER}: {zero}\r\n\
         {RESPONDED_HEADER}: {zero}\r\nconnection: {}\r\n\r\n{BODY}",
        BODY.len(),
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes()
}

/// A canned response and where its stamps' digits are.
pub(crate) struct Stamped {
    bytes: Vec<u8>,
    accepted_at: usize,
    responded_at: usize,
}

impl Stamped {
    fn new(worker: usize, keep_alive: bool) -> Stamped {
        let bytes = response(worker, keep_alive);
        let digits_of = |name: &str| {
            let at = bytes
                .windows(name.len())
                .position(|w| w == name.as_bytes())
                .expect("the response has its stamp headers");
            at + name.len() + 2
        };
        Stamped {
            accepted_at: digits_of(ACCEPTED_HEADER),
            responded_at: digits_of(RESPONDED_HEADER),
            bytes,
        }
    }

    fn stamp(&mut self, accepted_ns: u64, responded_ns: u64) {
        write_digits(
            &mut self.bytes[self.accepted_at..self.accepted_at + STAMP_DIGITS],
            accepted_ns,
        );
        write_digits(
            &mut self.bytes[self.responded_at..self.responded_at + STAMP_DIGITS],
            responded_ns,
        );
    }
}

/// Writes `v` in decimal over all of `out`, zero-padded.
fn write_digits(out: &mut [u8], mut v: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn write_all(conn: &OwnedFd, mut data: &[u8], write: fn(BorrowedFd<'_>, &[u8]) -> io::Result<usize>) -> io::Result<()> {
    while !data.is_empty() {
        match write(conn.as_fd(), data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_retry(conn: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match sys::read(conn.as_fd(), buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// If `buf[*start..len]` begins with a complete request head: consumes it and
/// the part of its body already buffered (moving `*start` past them), and
/// returns (keep-alive, body bytes still to read). Shared by the blocking and
/// the event-loop paths.
pub(crate) fn take_request(buf: &[u8], start: &mut usize, len: usize) -> Option<(bool, usize)> {
    let head_end = *start + find_head_end(&buf[*start..len])?;
    let head = &buf[*start..head_end];
    let keep_alive = wants_keep_alive(head);
    let body = content_length(head).unwrap_or(0);
    let buffered = (len - head_end).min(body);
    *start = head_end + buffered;
    Some((keep_alive, body - buffered))
}

/// Moves the unconsumed bytes `buf[*start..*len]` to the front, to make room
/// for the next read; an error if a head fills the whole buffer.
pub(crate) fn compact(buf: &mut [u8], start: &mut usize, len: &mut usize) -> io::Result<()> {
    if *start > 0 {
        buf.copy_within(*start..*len, 0);
        *len -= *start;
        *start = 0;
    }
    if *len == buf.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
    }
    Ok(())
}

/// Offset just past the `\r\n\r\n` that ends a request head.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The value of header `name` in a request head, trimmed.
fn header<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (n, v) = line.split_at(colon);
        n.eq_ignore_ascii_case(name).then(|| v[1..].trim_ascii())
    })
}

/// The request's Content-Length, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    std::str::from_utf8(header(head, b"content-length")?).ok()?.parse().ok()
}

/// HTTP/1.1 keeps the connection unless it says `close`; HTTP/1.0 closes it
/// unless it says `keep-alive`.
fn wants_keep_alive(head: &[u8]) -> bool {
    let http10 = head
        .split(|&b| b == b'\r')
        .next()
        .is_some_and(|line| line.ends_with(b"HTTP/1.0"));
    let conn = header(head, b"connection").unwrap_or(b"");
    let has = |token: &[u8]| {
        conn.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    };
    if http10 {
        has(b"keep-alive")
    } else {
        !has(b"close")
    }
}

/// Errors after which accept is simply called again: a signal, or a
/// connection that was reset while it waited in the queue.
pub(crate) fn transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR) | Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EPERM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn response_names_the_worker_and_has_the_right_length() {
        let r = String::from_utf8(response(3, false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("\r\nx-worker: 3\r\n"));
        assert!(r.contains("\r\nconnection: close\r\n"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, BODY);
        assert!(head.contains(&format!("content-length: {}", BODY.len())));
        assert!(String::from_utf8(response(0, true))
            .unwrap()
            .contains("connection: keep-alive"));
    }

    #[test]
    fn stamps_are_written_in_place_and_keep_the_length() {
        let mut s = Stamped::new(12, true);
        let len = s.bytes.len();
        s.stamp(u64::MAX, 42);
        let r = String::from_utf8(s.bytes.clone()).unwrap();
        assert_eq!(r.len(), len);
        assert!(r.contains("\r\nx-accepted-ns: 18446744073709551615\r\n"), "{r}");
        assert!(r.contains("\r\nx-responded-ns: 00000000000000000042\r\n"), "{r}");
        s.stamp(7, 0);
        let r = String::from_utf8(s.bytes.clone()).unwrap();
        assert!(r.contains("\r\nx-accepted-ns: 00000000000000000007\r\n"), "{r}");
        assert!(r.contains("\r\nx-responded-ns: 00000000000000000000\r\n"), "{r}");
        assert!(r.ends_with(BODY) && r.contains("x-worker: 12\r\n"));
    }

    #[test]
    fn service_times_parse_print_and_scale() {
        for text in ["0", "spin:50us", "sleep:1000us", "exp:200us"] {
            assert_eq!(text.parse::<Service>().unwrap().to_string(), text);
        }
        assert_eq!(
            "sleep:1ms".parse::<Service>().unwrap(),
            Service::Sleep(Duration::from_millis(1))
        );
        assert_eq!(
            Service::Spin(Duration::from_micros(50)).scaled(10.0),
            Service::Spin(Duration::from_micros(500))
        );
        assert!("nap:1ms".parse::<Service>().unwrap_err().contains("nap"));
        assert!("spin".parse::<Service>().is_err());
    }

    #[test]
    fn a_slow_worker_serves_slower() {
        let counters = Counters::new(2).unwrap();
        let plan = WorkerPlan {
            service: Service::Spin(Duration::from_millis(2)),
            slow: Some((1, 5.0)),
            ..WorkerPlan::default()
        };
        let fast = WorkerCtx::new(0, counters.slot(0), counters.header(), &plan);
        let slow = WorkerCtx::new(1, counters.slot(1), counters.header(), &plan);
        let time = |c: &WorkerCtx<'_>| {
            let t = std::time::Instant::now();
            c.work();
            t.elapsed()
        };
        assert!(time(&fast) >= Duration::from_millis(2));
        assert!(time(&slow) >= Duration::from_millis(10));
    }

    #[test]
    fn head_end_length_and_keep_alive() {
        let req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let end = find_head_end(req).unwrap();
        assert_eq!(&req[end..], b"hello");
        assert_eq!(content_length(&req[..end]), Some(5));
        assert!(wants_keep_alive(&req[..end]));
        assert!(!wants_keep_alive(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!wants_keep_alive(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
        assert!(wants_keep_alive(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    fn serve_pair(requests: &[u8], shut: bool) -> (String, crate::counters::Snapshot) {
        let (mut client, server) = UnixStream::pair().unwrap();
        let counters = Counters::new(1).unwrap();
        client.write_all(requests).unwrap();
        if shut {
            client.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let ctx = WorkerCtx::new(0, counters.slot(0), counters.header(), &WorkerPlan::default());
        ctx.take(OwnedFd::from(server));
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        (got, counters.slot(0).snapshot())
    }

    #[test]
    fn serves_one_request_and_closes() {
        let (got, s) = serve_pair(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", false);
        assert!(got.ends_with(BODY), "{got}");
        assert_eq!((s.accepted, s.requests, s.errors, s.active), (1, 1, 0, 0));
    }

    #[test]
    fn serves_keep_alive_requests_in_one_buffer_and_apart() {
        let ka = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
        let last = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let mut all = Vec::new();
        for _ in 0..2 {
            all.extend_from_slice(ka);
        }
        all.extend_from_slice(last);
        let (got, s) = serve_pair(&all, false);
        assert_eq!(got.matches("x-worker: 0").count(), 3, "{got}");
        assert_eq!(got.matches("connection: keep-alive").count(), 2);
        assert_eq!((s.accepted, s.requests, s.errors), (1, 3, 0));
    }

    #[test]
    fn client_closing_between_requests_is_not_an_error() {
        let (got, s) = serve_pair(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", true);
        assert!(got.ends_with(BODY));
        assert_eq!((s.requests, s.errors), (1, 0));
    }

    #[test]
    fn early_close_counts_an_error() {
        let (_, s) = serve_pair(b"GET / HTT", true);
        assert_eq!((s.accepted, s.requests, s.errors), (1, 0, 1));
    }

    #[test]
    fn a_request_body_is_drained() {
        let (got, s) = serve_pair(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            false,
        );
        assert!(got.ends_with(BODY));
        assert_eq!((s.requests, s.errors), (1, 0));
    }
}
