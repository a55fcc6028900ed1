//! The event loop that opens, drives and closes connections.
//!
//! The generator shares two cores with the server it measures, so every
//! syscall counts. Each thread owns an epoll instance and a fixed set of
//! slots; a slot runs one connection at a time: socket, connect, one
//! edge-triggered `epoll_ctl(ADD)` (never MOD), send on the first EPOLLOUT,
//! read until the response is complete and the peer's FIN is seen, close.
//! Buffers are per thread or per slot and reused; the only state shared
//! between threads is the start-ticket counter (in `Connections` mode) and
//! the stop flags.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, Stop};
use crate::http::{Progress, ResponseParser};
use crate::report::{ErrorClass, Recorder, Report};
use crate::sys;

/// How often deadlines, the cancel flag and the end of the run are checked
/// when nothing else wakes the loop.
const TICK: Duration = Duration::from_millis(50);
/// Events fetched per epoll_wait.
const EVENT_BATCH: usize = 256;
/// Per-thread read buffer; large bodies take several reads.
const READ_BUF: usize = 16 * 1024;

const EV_IN: u32 = libc::EPOLLIN as u32;
const EV_OUT: u32 = libc::EPOLLOUT as u32;
const EV_RDHUP: u32 = libc::EPOLLRDHUP as u32;
const EV_HUP: u32 = libc::EPOLLHUP as u32;
const EV_ERR: u32 = libc::EPOLLERR as u32;
const EV_ET: u32 = libc::EPOLLET as u32;

/// Runs the load described by `cfg` and returns what it measured.
///
/// Fails only if `cfg` is invalid (`InvalidInput`, with the message of
/// [`Config::validate`]) or the event loop itself breaks (epoll errors);
/// failed connections are counted in the report, never returned as errors.
pub fn run(cfg: &Config) -> io::Result<Report> {
    cfg.validate()
        .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let shared = Shared {
        tickets: AtomicU64::new(0),
        limit: match cfg.stop {
            Stop::Connections(n) => Some(n),
            Stop::Duration(_) => None,
        },
        end: match cfg.stop {
            Stop::Connections(_) => None,
            Stop::Duration(d) => Some(Instant::now() + d),
        },
        abort: AtomicBool::new(false),
        request: format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            cfg.host_header
        )
        .into_bytes(),
    };
    let threads = cfg.threads;
    let slots_of =
        |i: usize| cfg.concurrency / threads + usize::from(i < cfg.concurrency % threads);
    let rec = if threads == 1 {
        Thread::new(cfg, &shared, slots_of(0), 0)?.run()?
    } else {
        let results: Vec<io::Result<Recorder>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let shared = &shared;
                    std::thread::Builder::new()
                        .name(format!("loadgen-{i}"))
                        .spawn_scoped(s, move || {
                            let r = Thread::new(cfg, shared, slots_of(i), i).and_then(Thread::run);
                            if r.is_err() {
                                shared.abort.store(true, Ordering::Relaxed);
                            }
                            r
                        })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    Err(e) => {
                        shared.abort.store(true, Ordering::Relaxed);
                        Err(e)
                    }
                })
                .collect()
        });
        let mut total = Recorder::new();
        for r in results {
            total.merge(r?);
        }
        total
    };
    Ok(rec.into_report())
}

/// State all threads see.
struct Shared {
    /// Start tickets claimed so far (Connections mode).
    tickets: AtomicU64,
    limit: Option<u64>,
    /// When to stop starting connections (Duration mode).
    end: Option<Instant>,
    /// Set when a thread failed, so the others wind down too.
    abort: AtomicBool,
    request: Vec<u8>,
}

struct Conn {
    fd: OwnedFd,
    started: Instant,
    deadline: Instant,
    /// Request bytes sent so far.
    written: usize,
    /// When the response became complete.
    done_at: Option<Instant>,
}

struct Slot {
    /// Bumped for every connection, so a stale event cannot hit a successor.
    gen: u32,
    conn: Option<Conn>,
    parser: ResponseParser,
}

/// What a connection ended with.
type Outcome = Result<(), ErrorClass>;

struct Thread<'a> {
    cfg: &'a Config,
    shared: &'a Shared,
    epoll: OwnedFd,
    slots: Vec<Slot>,
    /// Idle slots and when they may start, in time order (the gap is constant).
    ready: VecDeque<(Instant, usize)>,
    active: usize,
    scratch: Box<[u8]>,
    rec: Recorder,
    out_of_tickets: bool,
    next_source: usize,
}

impl<'a> Thread<'a> {
    fn new(
        cfg: &'a Config,
        shared: &'a Shared,
        slots: usize,
        index: usize,
    ) -> io::Result<Thread<'a>> {
        Ok(Thread {
            cfg,
            shared,
            epoll: sys::epoll_create()?,
            slots: (0..slots)
                .map(|_| Slot {
                    gen: 0,
                    conn: None,
                    parser: ResponseParser::new(),
                })
                .collect(),
            ready: VecDeque::with_capacity(slots),
            active: 0,
            scratch: vec![0; READ_BUF].into_boxed_slice(),
            rec: Recorder::new(),
            out_of_tickets: false,
            next_source: index,
        })
    }

    fn run(mut self) -> io::Result<Recorder> {
        // Precise short gaps; restored on return because with one thread
        // this is the caller's thread.
        let _slack = (!self.cfg.gap.is_zero())
            .then(TimerSlack::precise)
            .flatten();
        let now = Instant::now();
        self.ready.extend((0..self.slots.len()).map(|i| (now, i)));
        let mut events = vec![sys::EMPTY_EVENT; EVENT_BATCH];
        let mut next_scan = now + TICK;
        loop {
            let now = Instant::now();
            if self.stopping(now) {
                self.ready.clear();
            }
            // Start the slots that are due. Only those queued before this
            // pass: a slot whose start failed at once goes to the back and
            // waits for the next pass, so a failing socket() cannot spin here.
            for _ in 0..self.ready.len() {
                match self.ready.front() {
                    Some(&(t, idx)) if t <= now => {
                        self.ready.pop_front();
                        self.start(idx);
                    }
                    _ => break,
                }
            }
            if now >= next_scan {
                self.expire(now);
                next_scan = now + TICK;
            }
            if self.active == 0 && self.ready.is_empty() {
                return Ok(self.rec);
            }
            let mut wake = next_scan;
            if let Some(&(t, _)) = self.ready.front() {
                wake = wake.min(t);
            }
            if let Some(end) = self.shared.end.filter(|&e| e > now) {
                wake = wake.min(end);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            let n = sys::epoll_wait(self.epoll.as_fd(), &mut events, timeout)?;
            for ev in &events[..n] {
                let (flags, data) = (ev.events, ev.u64);
                self.on_event(data, flags);
            }
        }
    }

    /// True once no new connection may start.
    fn stopping(&self, now: Instant) -> bool {
        self.out_of_tickets
            || self.cfg.cancel.load(Ordering::Relaxed)
            || self.shared.abort.load(Ordering::Relaxed)
            || self.shared.end.is_some_and(|e| now >= e)
    }

    /// Claims a start ticket if the run is not over.
    fn may_start(&mut self, now: Instant) -> bool {
        if self.stopping(now) {
            return false;
        }
        if let Some(limit) = self.shared.limit {
            if self.shared.tickets.fetch_add(1, Ordering::Relaxed) >= limit {
                self.out_of_tickets = true;
                return false;
            }
        }
        true
    }

    /// Starts a connection in idle slot `idx`, if the run is not over.
    fn start(&mut self, idx: usize) {
        let now = Instant::now();
        if !self.may_start(now) {
            return;
        }
        self.rec.start(now);
        match self.open(idx, now) {
            Ok(()) => self.active += 1,
            Err(e) => {
                self.rec.error(ErrorClass::from_io(&e), now);
                self.ready.push_back((now + self.cfg.gap, idx));
            }
        }
    }

    fn open(&mut self, idx: usize, now: Instant) -> io::Result<()> {
        let target = &self.cfg.target;
        let fd = sys::tcp_socket(target)?;
        if !self.cfg.sources.is_empty() {
            let ip = self.cfg.sources[self.next_source % self.cfg.sources.len()];
            self.next_source = self.next_source.wrapping_add(1);
            sys::bind_source(fd.as_fd(), ip)?;
        }
        sys::connect(fd.as_fd(), target)?;
        let slot = &mut self.slots[idx];
        slot.gen = slot.gen.wrapping_add(1);
        let data = (u64::from(slot.gen) << 32) | idx as u64;
        sys::epoll_add(
            self.epoll.as_fd(),
            fd.as_fd(),
            EV_IN | EV_OUT | EV_RDHUP | EV_ET,
            data,
        )?;
        slot.conn = Some(Conn {
            fd,
            started: now,
            deadline: now + self.cfg.timeout,
            written: 0,
            done_at: None,
        });
        Ok(())
    }

    fn on_event(&mut self, data: u64, flags: u32) {
        let idx = (data & 0xffff_ffff) as usize;
        let gen = (data >> 32) as u32;
        let Some(slot) = self.slots.get_mut(idx) else {
            return;
        };
        if slot.gen != gen {
            return;
        }
        if let Some(outcome) = drive(slot, flags, &self.shared.request, &mut self.scratch) {
            self.finish(idx, outcome);
        }
    }

    /// Closes the connection in slot `idx`, records it, and schedules the slot's next one.
    fn finish(&mut self, idx: usize, outcome: Outcome) {
        let now = Instant::now();
        let slot = &mut self.slots[idx];
        let Some(conn) = slot.conn.take() else { return };
        drop(conn.fd);
        self.active -= 1;
        match outcome {
            Ok(()) => {
                let latency = conn
                    .done_at
                    .unwrap_or(now)
                    .saturating_duration_since(conn.started);
                self.rec.complete(slot.parser.worker(), latency, now);
            }
            Err(class) => self.rec.error(class, now),
        }
        slot.parser.reset();
        if self.cfg.gap.is_zero() {
            self.start(idx);
        } else if !self.stopping(now) {
            self.ready.push_back((now + self.cfg.gap, idx));
        }
    }

    /// Fails every connection past its deadline.
    fn expire(&mut self, now: Instant) {
        for idx in 0..self.slots.len() {
            if self.slots[idx]
                .conn
                .as_ref()
                .is_some_and(|c| now >= c.deadline)
            {
                self.finish(idx, Err(ErrorClass::Timeout));
            }
        }
    }
}

/// Lowers the thread's timer slack to 1 us while alive (best effort: without
/// it a gap is only overshot by up to the default 50 us).
struct TimerSlack(u64);

impl TimerSlack {
    fn precise() -> Option<TimerSlack> {
        let old = sys::timer_slack_ns().ok()?;
        sys::set_timer_slack_ns(1_000).ok()?;
        Some(TimerSlack(old))
    }
}

impl Drop for TimerSlack {
    fn drop(&mut self) {
        let _ = sys::set_timer_slack_ns(self.0);
    }
}

/// Advances one connection on an epoll event. `None`: wait for the next event.
fn drive(slot: &mut Slot, flags: u32, request: &[u8], scratch: &mut [u8]) -> Option<Outcome> {
    let conn = slot.conn.as_mut()?;
    let fd = conn.fd.as_fd();
    if conn.written < request.len() {
        if flags & (EV_ERR | EV_HUP) != 0 {
            // The connect failed (or the peer gave up before our request).
            return Some(Err(match sys::so_error(fd) {
                Ok(0) => ErrorClass::Other,
                Ok(errno) => ErrorClass::from_errno(errno),
                Err(e) => ErrorClass::from_io(&e),
            }));
        }
        if flags & EV_OUT == 0 {
            return None;
        }
        while conn.written < request.len() {
            match sys::send(fd, &request[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => return Some(Err(ErrorClass::from_io(&e))),
            }
        }
    }
    if flags & (EV_IN | EV_RDHUP | EV_HUP | EV_ERR) == 0 {
        return None;
    }
    // The peer's FIN (or an error) is already queued behind the data.
    let closing = flags & (EV_RDHUP | EV_HUP | EV_ERR) != 0;
    let parser = &mut slot.parser;
    loop {
        match sys::read(fd, scratch) {
            Ok(0) => {
                let r = parser.finish();
                if r.is_ok() && conn.done_at.is_none() {
                    conn.done_at = Some(Instant::now());
                }
                return Some(r.map_err(|_| ErrorClass::Malformed));
            }
            Ok(n) => {
                if !parser.is_complete() {
                    match parser.feed(&scratch[..n]) {
                        Ok(Progress::Complete) => conn.done_at = Some(Instant::now()),
                        Ok(Progress::NeedMore) => {}
                        Err(_) => return Some(Err(ErrorClass::Malformed)),
                    }
                }
                if closing && parser.is_complete() {
                    // Complete, and only the FIN is left: no need to read it.
                    return Some(Ok(()));
                }
                if n < scratch.len() && !closing {
                    // Edge-triggered: a short read drained the socket; the
                    // FIN or more data will raise a new edge.
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            // A reset after a complete response still delivered the response.
            Err(_) if parser.is_complete() => return Some(Ok(())),
            Err(e) => return Some(Err(ErrorClass::from_io(&e))),
        }
    }
}
