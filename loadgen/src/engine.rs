//! The event loop that opens, drives and closes connections.
//!
//! The generator shares two cores with the server it measures, so every
//! syscall counts. Each thread owns an epoll instance and a fixed set of
//! slots; a slot runs one connection at a time: socket, connect, one
//! edge-triggered `epoll_ctl(ADD)` (never MOD), send on the first EPOLLOUT,
//! read until the response is complete (and, with keep-alive, send the next
//! request at once), read the peer's FIN after the last response, close.
//! Buffers are per thread or per slot and reused; the only state shared
//! between threads is the start-ticket counter (closed loop, `Connections`
//! mode), the run's start time and the stop flags.
//!
//! Closed loop: a slot starts its next connection when its previous one ends
//! (after the think time). Open loop: each thread walks its own arrival
//! [`Schedule`]; an arrival whose time has come takes a free slot, or waits
//! (the part of the schedule already due *is* the FIFO backlog, so waiting
//! arrivals cost no memory) until a slot frees, is too old (timeout) or the
//! run stops. Every arrival taken from the schedule is either started or
//! counted as dropped.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, Stop};
use crate::http::{Progress, ResponseParser};
use crate::report::{ErrorClass, Recorder, Report, RequestTimes};
use crate::schedule::Schedule;

/// How often deadlines, the cancel flag and the end of the run are checked
/// when nothing else wakes the loop.
pub const TICK: Duration = Duration::from_millis(50);
/// How long connections in flight may still finish once the run is
/// cancelled; those still open then are closed and counted as
/// [`ErrorClass::Cancelled`], so a cancel ends the run within about
/// `TICK + CANCEL_GRACE` whatever the timeout.
pub const CANCEL_GRACE: Duration = Duration::from_millis(100);
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
    let wall = SystemTime::now();
    let start = Instant::now();
    let request = |connection: &str| {
        format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\r\n",
            cfg.host_header
        )
        .into_bytes()
    };
    let shared = Shared {
        start,
        tickets: AtomicU64::new(0),
        limit: match (cfg.stop, cfg.open) {
            (Stop::Connections(n), None) => Some(n),
            _ => None,
        },
        end: match cfg.stop {
            Stop::Connections(_) => None,
            Stop::Duration(d) => Some(start + d),
        },
        abort: AtomicBool::new(false),
        close: request("close"),
        keep_alive: request("keep-alive"),
    };
    let threads = cfg.threads;
    let slots = cfg.slots();
    let slots_of = |i: usize| slots / threads + usize::from(i < slots % threads);
    let mut recs: Vec<Recorder> = if threads == 1 {
        vec![Thread::new(cfg, &shared, slots_of(0), 0)?.run()?]
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
        results.into_iter().collect::<io::Result<_>>()?
    };
    // Every thread sends the same intervals, up to the one the run ended in.
    if let Some(iv) = &cfg.intervals {
        let run_end = Instant::now();
        let elapsed = run_end.saturating_duration_since(start).as_nanos().max(1);
        let last = ((elapsed - 1) / iv.every.as_nanos().max(1)) as u64;
        for r in &mut recs {
            r.flush_intervals(run_end, last);
        }
    }
    let mut total = Recorder::new(cfg.record).traced(cfg.trace);
    for r in recs {
        total.merge(r);
    }
    Ok(total.into_report(wall))
}

/// State all threads see.
struct Shared {
    /// The run start: time zero of the arrival schedules and the intervals.
    start: Instant,
    /// Start tickets claimed so far (closed loop, Connections mode).
    tickets: AtomicU64,
    limit: Option<u64>,
    /// When to stop starting connections (Duration mode).
    end: Option<Instant>,
    /// Set when a thread failed, so the others wind down too.
    abort: AtomicBool,
    /// The request with `Connection: close` (the last on a connection).
    close: Vec<u8>,
    /// The request with `Connection: keep-alive` (all but the last).
    keep_alive: Vec<u8>,
}

struct Conn {
    fd: OwnedFd,
    /// When the current request should have started: the scheduled time for
    /// the first request in the open loop, else the same as `req_start`.
    intended: Instant,
    /// When socket() was called.
    started: Instant,
    /// Actual start to established, once EPOLLOUT was seen.
    connect: Option<Duration>,
    /// Start of the current request: `started` for the first, send start
    /// for later ones.
    req_start: Instant,
    /// First byte of the current response.
    first_byte: Option<Instant>,
    /// The current request's deadline.
    deadline: Instant,
    /// Bytes of the current request sent so far.
    written: usize,
    /// Responses completed on this connection.
    responses: u32,
    /// The recorder's index of the worker that sent the first response.
    first_worker: Option<usize>,
}

struct Slot {
    /// Bumped for every connection, so a stale event cannot hit a successor.
    gen: u32,
    conn: Option<Conn>,
    parser: ResponseParser,
}

/// What a connection ended with.
type Outcome = Result<(), ErrorClass>;

/// Open-loop state of one thread.
struct OpenState {
    sched: Schedule,
    /// Idle slots.
    free: Vec<usize>,
    /// The last time every slot was found busy: an arrival due by then that
    /// starts later waited for a slot (it is late).
    late_mark: Option<Instant>,
}

struct Thread<'a> {
    cfg: &'a Config,
    shared: &'a Shared,
    epoll: sys::Epoll,
    slots: Vec<Slot>,
    /// Closed loop: idle slots and when they may start, in time order (the
    /// gap is constant).
    ready: VecDeque<(Instant, usize)>,
    /// `Some` in the open loop.
    open: Option<OpenState>,
    active: usize,
    scratch: Box<[u8]>,
    rec: Recorder,
    out_of_tickets: bool,
    next_source: usize,
    /// When this thread first saw the cancel flag.
    cancel_seen: Option<Instant>,
}

impl<'a> Thread<'a> {
    fn new(cfg: &'a Config, shared: &'a Shared, slots: usize, index: usize) -> io::Result<Thread<'a>> {
        let mut rec = Recorder::new(cfg.record).traced(cfg.trace);
        if let Some(iv) = &cfg.intervals {
            rec = rec.with_intervals(index, shared.start, iv.every, iv.sink.clone());
        }
        let open = cfg.open.map(|o| OpenState {
            sched: Schedule::new(&o, cfg.seed, index, cfg.threads, cfg.stop),
            free: (0..slots).rev().collect(),
            late_mark: None,
        });
        Ok(Thread {
            cfg,
            shared,
            epoll: sys::Epoll::new()?,
            slots: (0..slots)
                .map(|_| {
                    // Once per slot: the parser keeps it across reset().
                    let mut parser = ResponseParser::new();
                    parser.set_attribution(&cfg.attribution);
                    Slot {
                        gen: 0,
                        conn: None,
                        parser,
                    }
                })
                .collect(),
            ready: VecDeque::with_capacity(slots),
            open,
            active: 0,
            scratch: vec![0; READ_BUF].into_boxed_slice(),
            rec,
            out_of_tickets: false,
            next_source: index,
            cancel_seen: None,
        })
    }

    fn run(mut self) -> io::Result<Recorder> {
        // Precise short gaps and arrival times; restored on return because
        // with one thread this is the caller's thread.
        let _slack = (self.open.is_some() || !self.cfg.gap.is_zero())
            .then(TimerSlack::precise)
            .flatten();
        let now = Instant::now();
        if self.open.is_none() {
            self.ready.extend((0..self.slots.len()).map(|i| (now, i)));
        }
        let mut events = vec![sys::EMPTY_EVENT; EVENT_BATCH];
        let mut next_scan = now + TICK;
        loop {
            let now = Instant::now();
            self.rec.tick(now);
            let next_start = if self.open.is_some() {
                self.admit(now)
            } else {
                self.start_ready(now)
            };
            if now >= next_scan {
                self.expire(now);
                next_scan = now + TICK;
            }
            if self.cancel_seen.is_none() && self.cancelled() {
                // Read after the flag: the grace never starts before the cancel.
                self.cancel_seen = Some(Instant::now());
            }
            let grace_end = self.cancel_seen.map(|t| t + CANCEL_GRACE);
            if grace_end.is_some_and(|g| now >= g) {
                self.cancel_in_flight();
            }
            let idle = match &self.open {
                Some(o) => o.sched.peek().is_none(),
                None => self.ready.is_empty(),
            };
            if self.active == 0 && idle {
                break;
            }
            let mut wake = next_scan;
            for t in [next_start, self.rec.next_tick(), grace_end].into_iter().flatten() {
                wake = wake.min(t);
            }
            if let Some(end) = self.shared.end.filter(|&e| e > now) {
                wake = wake.min(end);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            // A signal the caller catches (EINTR) is a wakeup like any other.
            let n = match self.epoll.wait(&mut events, Some(timeout)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                r => r?,
            };
            for ev in &events[..n] {
                let (flags, data) = (ev.events, ev.u64);
                self.on_event(data, flags);
            }
        }
        let scheduled = match &self.open {
            Some(o) => o.sched.popped(),
            None => self.rec.started(),
        };
        self.rec.add_scheduled(scheduled);
        Ok(self.rec)
    }

    /// True once no new connection may start (closed loop: also out of tickets).
    fn stopping(&self, now: Instant) -> bool {
        self.out_of_tickets || self.cancelled() || self.shared.end.is_some_and(|e| now >= e)
    }

    /// Cancelled by the caller, or another thread failed.
    fn cancelled(&self) -> bool {
        self.cfg.cancel.load(Ordering::Relaxed) || self.shared.abort.load(Ordering::Relaxed)
    }

    /// Closed loop: starts the idle slots that are due; returns when the
    /// next one is.
    fn start_ready(&mut self, now: Instant) -> Option<Instant> {
        if self.stopping(now) {
            self.ready.clear();
        }
        // Only those queued before this pass: a slot whose start failed at
        // once goes to the back and waits for the next pass, so a failing
        // socket() cannot spin here.
        for _ in 0..self.ready.len() {
            match self.ready.front() {
                Some(&(t, idx)) if t <= now => {
                    self.ready.pop_front();
                    self.start_closed(idx);
                }
                _ => break,
            }
        }
        self.ready.front().map(|&(t, _)| t)
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

    /// Closed loop: starts a connection in idle slot `idx`, if the run is not over.
    fn start_closed(&mut self, idx: usize) {
        let now = Instant::now();
        if !self.may_start(now) {
            return;
        }
        if !self.start(idx, now, now) {
            self.ready.push_back((now + self.cfg.gap, idx));
        }
    }

    /// Open loop: starts the arrivals that are due while slots are free,
    /// drops those that cannot start any more; returns when to look again.
    fn admit(&mut self, now: Instant) -> Option<Instant> {
        let mut o = self.open.take()?;
        let wake = self.admit_from(&mut o, now);
        self.open = Some(o);
        wake
    }

    /// One turn's work is bounded whatever the rate: arrivals that cannot
    /// start any more (cancelled, waited longer than the timeout, the run is
    /// over) are counted in bulk ([`Schedule::skip_before`]), and at most
    /// one start is tried per slot.
    fn admit_from(&mut self, o: &mut OpenState, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(self.shared.start);
        if self.cancelled() {
            // What is due is dropped; what is not due yet never comes.
            let due = o.sched.skip_before(elapsed + Duration::from_nanos(1));
            self.rec.dropped(due);
            o.sched.finish();
            return None;
        }
        // Those that waited longer than the timeout (`now - t > timeout`).
        if let Some(cut) = elapsed.checked_sub(self.cfg.timeout) {
            let stale = o.sched.skip_before(cut);
            self.rec.dropped(stale);
        }
        let mut tries = self.slots.len();
        loop {
            let t = self.shared.start + o.sched.peek()?;
            if t > now {
                return Some(t);
            }
            if tries == 0 {
                // Failed starts gave their slots back: go round the loop
                // (epoll, the cancel flag) before trying again.
                return Some(now);
            }
            let Some(idx) = o.free.pop() else {
                o.late_mark = Some(now);
                if let Some(end) = self.shared.end.filter(|&e| now >= e) {
                    // The run is over: what still waits is never started.
                    let left = o.sched.skip_before(end.saturating_duration_since(self.shared.start));
                    self.rec.dropped(left);
                    o.sched.finish();
                    return None;
                }
                // A freed slot wakes the loop; otherwise look again when
                // this arrival has waited too long.
                return Some(t + self.cfg.timeout);
            };
            tries -= 1;
            o.sched.pop();
            if o.late_mark.is_some_and(|m| t <= m) {
                self.rec.late();
            }
            if !self.start(idx, t, Instant::now()) {
                o.free.push(idx);
            }
        }
    }

    /// Starts a connection in idle slot `idx` meant to start at `intended`;
    /// false if it failed at once (counted as an error).
    fn start(&mut self, idx: usize, intended: Instant, now: Instant) -> bool {
        self.rec.start(now);
        match self.open_conn(idx, intended, now) {
            Ok(()) => {
                self.active += 1;
                true
            }
            Err(e) => {
                self.rec.connection_failed(ErrorClass::from_io(&e), None, now);
                false
            }
        }
    }

    fn open_conn(&mut self, idx: usize, intended: Instant, now: Instant) -> io::Result<()> {
        let target = &self.cfg.target;
        let fd = sys::client_socket(target)?;
        if !self.cfg.sources.is_empty() {
            let ip = self.cfg.sources[self.next_source % self.cfg.sources.len()];
            self.next_source = self.next_source.wrapping_add(1);
            sys::bind_source(fd.as_fd(), ip)?;
        }
        if self.cfg.piggyback_ack {
            sys::piggyback_handshake_ack(fd.as_fd())?;
        }
        sys::connect(fd.as_fd(), target)?;
        let slot = &mut self.slots[idx];
        slot.gen = slot.gen.wrapping_add(1);
        let data = (u64::from(slot.gen) << 32) | idx as u64;
        self.epoll.add(fd.as_fd(), EV_IN | EV_OUT | EV_RDHUP | EV_ET, data)?;
        slot.parser.reset();
        slot.parser.set_require_length(self.cfg.requests_per_conn > 1);
        slot.conn = Some(Conn {
            fd,
            intended,
            started: now,
            connect: None,
            req_start: now,
            first_byte: None,
            deadline: now + self.cfg.timeout,
            written: 0,
            responses: 0,
            first_worker: None,
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
        let mut io = ConnIo {
            rec: &mut self.rec,
            scratch: &mut self.scratch,
            close: &self.shared.close,
            keep_alive: &self.shared.keep_alive,
            per_conn: self.cfg.requests_per_conn,
            timeout: self.cfg.timeout,
        };
        if let Some(outcome) = drive(slot, flags, &mut io) {
            self.finish(idx, outcome);
        }
    }

    /// Closes the connection in slot `idx`, records it, and frees the slot
    /// (closed loop: schedules the slot's next connection).
    fn finish(&mut self, idx: usize, outcome: Outcome) {
        let now = Instant::now();
        let was_full = self.active == self.slots.len();
        let slot = &mut self.slots[idx];
        let Some(conn) = slot.conn.take() else { return };
        drop(conn.fd);
        self.active -= 1;
        match (outcome, conn.first_worker) {
            (Ok(()), Some(w)) => self.rec.connection_ok(w, conn.connect, now),
            // Ok without a response cannot happen; never count it as completed.
            (Ok(()), None) => self.rec.connection_failed(ErrorClass::Other, conn.connect, now),
            (Err(class), _) => self.rec.connection_failed(class, conn.connect, now),
        }
        slot.parser.reset();
        if let Some(o) = &mut self.open {
            if was_full {
                o.late_mark = Some(now);
            }
            o.free.push(idx);
        } else if self.cfg.gap.is_zero() {
            self.start_closed(idx);
        } else if !self.stopping(now) {
            self.ready.push_back((now + self.cfg.gap, idx));
        }
    }

    /// Closes every connection still in flight (the run was cancelled and
    /// its grace is over).
    fn cancel_in_flight(&mut self) {
        for idx in 0..self.slots.len() {
            if self.slots[idx].conn.is_some() {
                self.finish(idx, Err(ErrorClass::Cancelled));
            }
        }
    }

    /// Fails every connection past its deadline.
    fn expire(&mut self, now: Instant) {
        for idx in 0..self.slots.len() {
            if self.slots[idx].conn.as_ref().is_some_and(|c| now >= c.deadline) {
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

/// What [`drive`] needs besides the slot.
struct ConnIo<'b> {
    rec: &'b mut Recorder,
    scratch: &'b mut [u8],
    close: &'b [u8],
    keep_alive: &'b [u8],
    per_conn: u32,
    timeout: Duration,
}

impl ConnIo<'_> {
    /// The request to send after `done` responses on a connection.
    fn request(&self, done: u32) -> &[u8] {
        if done + 1 >= self.per_conn {
            self.close
        } else {
            self.keep_alive
        }
    }
}

/// The error class of a failed connect (or a peer that gave up before our
/// request was sent), from SO_ERROR.
fn socket_error(conn: &Conn) -> ErrorClass {
    match sys::so_error(conn.fd.as_fd()) {
        Ok(0) => ErrorClass::Other,
        Ok(errno) => ErrorClass::from_errno(errno),
        Err(e) => ErrorClass::from_io(&e),
    }
}

/// Sends what is left of `req`. `Ok(false)`: the socket buffer is full; an
/// EPOLLOUT edge will come.
fn send_rest(conn: &mut Conn, req: &[u8]) -> Result<bool, ErrorClass> {
    while conn.written < req.len() {
        match sys::send(conn.fd.as_fd(), &req[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(ErrorClass::from_io(&e)),
        }
    }
    Ok(true)
}

/// Records the response the parser just completed.
fn record_response(conn: &mut Conn, parser: &ResponseParser, rec: &mut Recorder, now: Instant) {
    let t = RequestTimes {
        intended: conn.intended,
        start: conn.req_start,
        first_byte: conn.first_byte.unwrap_or(now),
        done: now,
        established: conn.connect.filter(|_| conn.responses == 0).map(|c| conn.started + c),
        stamps: parser.stamps(),
    };
    let w = rec.response(parser.worker(), &t);
    if conn.responses == 0 {
        conn.first_worker = Some(w);
    }
    conn.responses += 1;
}

/// Feeds `io.scratch[..n]`, read at `now`, to the parser: records each
/// response it completes and sends the next request. `Some`: the connection failed.
fn consume(
    conn: &mut Conn,
    parser: &mut ResponseParser,
    io: &mut ConnIo<'_>,
    n: usize,
    now: Instant,
) -> Option<Outcome> {
    conn.first_byte.get_or_insert(now);
    let mut pos = 0;
    loop {
        match parser.feed_partial(&io.scratch[pos..n]) {
            Err(_) => return Some(Err(ErrorClass::Malformed)),
            Ok((Progress::NeedMore, _)) => return None,
            Ok((Progress::Complete, used)) => {
                pos += used;
                record_response(conn, parser, io.rec, now);
                if conn.responses >= io.per_conn {
                    // Bytes after the last response are ignored.
                    return None;
                }
                // The next request on this connection starts now.
                parser.reset();
                parser.set_require_length(conn.responses + 1 < io.per_conn);
                let s = Instant::now();
                conn.intended = s;
                conn.req_start = s;
                conn.first_byte = None;
                conn.deadline = s + io.timeout;
                conn.written = 0;
                if let Err(class) = send_rest(conn, io.request(conn.responses)) {
                    return Some(Err(class));
                }
                if pos >= n {
                    return None;
                }
                // The server answered ahead of the request (pipelining a
                // response we had not asked for yet): its first byte is here.
                conn.first_byte = Some(s);
            }
        }
    }
}

/// Advances one connection on an epoll event. `None`: wait for the next event.
fn drive(slot: &mut Slot, flags: u32, io: &mut ConnIo<'_>) -> Option<Outcome> {
    let conn = slot.conn.as_mut()?;
    let parser = &mut slot.parser;
    if conn.connect.is_none() {
        if flags & (EV_ERR | EV_HUP) != 0 {
            // The connect failed.
            return Some(Err(socket_error(conn)));
        }
        if flags & EV_OUT == 0 {
            return None;
        }
        conn.connect = Some(Instant::now().saturating_duration_since(conn.started));
    }
    if conn.responses < io.per_conn {
        let req = io.request(conn.responses);
        if conn.written < req.len() {
            if flags & (EV_ERR | EV_HUP) != 0 {
                // The peer gave up before our request.
                return Some(Err(socket_error(conn)));
            }
            if flags & EV_OUT == 0 {
                return None;
            }
            match send_rest(conn, req) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(class) => return Some(Err(class)),
            }
        }
    }
    if flags & (EV_IN | EV_RDHUP | EV_HUP | EV_ERR) == 0 {
        return None;
    }
    // The peer's FIN (or an error) is already queued behind the data.
    let closing = flags & (EV_RDHUP | EV_HUP | EV_ERR) != 0;
    loop {
        let all_done = conn.responses >= io.per_conn;
        match sys::read(conn.fd.as_fd(), io.scratch) {
            Ok(0) => {
                if all_done {
                    return Some(Ok(()));
                }
                // End of stream: completes an EOF-delimited last response,
                // anything else was cut short.
                if parser.finish().is_ok() {
                    record_response(conn, parser, io.rec, Instant::now());
                    if conn.responses >= io.per_conn {
                        return Some(Ok(()));
                    }
                }
                return Some(Err(ErrorClass::Malformed));
            }
            Ok(n) => {
                if !all_done {
                    if let Some(failed) = consume(conn, parser, io, n, Instant::now()) {
                        return Some(failed);
                    }
                }
                if closing && conn.responses >= io.per_conn {
                    // Complete, and only the FIN is left: no need to read it.
                    return Some(Ok(()));
                }
                if n < io.scratch.len() && !closing {
                    // Edge-triggered: a short read drained the socket; the
                    // FIN or more data will raise a new edge.
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            // A reset after the last response still delivered the responses.
            Err(_) if all_done => return Some(Ok(())),
            Err(e) => return Some(Err(ErrorClass::from_io(&e))),
        }
    }
}
