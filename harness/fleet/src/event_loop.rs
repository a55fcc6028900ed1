//! A worker's event loop, for `--worker-concurrency K > 1`.
//!
//! Why it exists: with K = 1 a worker serves one connection at a time
//! (blocking read, service time, write, close: [`WorkerCtx::take`]), so a
//! worker that is busy is simply not in epoll_wait and the kernel's choice of
//! whom to wake is all that decides the spread. Real event-loop servers
//! (Node, nginx) keep many connections open per worker; what spreads the load
//! then is which worker's loop comes back to its listener first, and whether a
//! full worker stops taking more. This module is that loop, so the models that
//! wait in epoll can be measured both ways.
//!
//! One epoll set per worker holds the model's *source* (the shared listener,
//! or the channel a dispatcher hands descriptors over) and every open
//! connection. Connections are non-blocking and registered once,
//! edge-triggered for reading and writing; each runs a small state machine:
//! read the request head, drain its body, spend the service time, write the
//! response, then close or (keep-alive) read the next request. Parsing and
//! the canned responses are `worker.rs`'s, shared with the blocking path.
//!
//! Service times: `sleep:` and `exp:` become a per-connection deadline, and
//! the loop's epoll_wait timeout is the earliest deadline, so a waiting
//! request never blocks the others. `spin:` is CPU work and busy-waits inline:
//! it blocks the whole loop for its length, as CPU work does in Node. An
//! injected stall (`--stall-worker`) also blocks the whole loop, like a GC
//! pause.
//!
//! Back-pressure: with K connections open the source is taken out of the
//! epoll set (EPOLL_CTL_DEL, as nginx disables its accept events when
//! `worker_connections` run out) and put back when one closes, so a full
//! worker neither accepts nor reads its channel and leaves new connections to
//! the others (for a dispatcher's channel they wait in the channel, and still
//! count as outstanding for `dispatch-least`).
//!
//! Counters keep their meaning: `accepted` when a connection is taken,
//! `requests` per response written, `errors`, `active` (open now, a gauge) and
//! `finished` when one is closed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::counters::Slot;
use crate::worker::{compact, take_request, transient_accept_error, WorkerCtx, MAX_REQUEST};
use sys::Epoll;

/// Tag bit of a connection's epoll registration; the source's tag (the
/// worker's index, as /proc/PID/fdinfo shows) never has it.
const CONN: u64 = 1 << 63;

/// Most events taken from one epoll_wait.
const MAX_EVENTS: usize = 256;

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head.
    Head,
    /// Draining this many body bytes.
    Body { left: usize, keep_alive: bool },
    /// Waiting for its service deadline (in the timer heap).
    Service { keep_alive: bool },
    /// Writing the response, begun at `responded_ns`; `done` bytes are out.
    Write {
        keep_alive: bool,
        done: usize,
        responded_ns: u64,
    },
}

struct Conn {
    fd: OwnedFd,
    /// Tells a reused slot's registrations and deadlines from its earlier ones.
    gen: u32,
    buf: Vec<u8>,
    /// Bytes `buf[start..len]` are read but not yet consumed.
    start: usize,
    len: usize,
    served: u64,
    state: State,
    /// When the worker took it (CLOCK_MONOTONIC ns), for the response's stamp.
    accepted_ns: u64,
}

/// What a connection's step ended in.
enum Step {
    /// Waits for readiness or its deadline.
    Wait,
    /// Done; `true` if it ended in an error.
    Close(bool),
}

/// The model's source of new connections, while watched.
struct Source<'l> {
    fd: BorrowedFd<'l>,
    events: u32,
    tag: u64,
    registered: bool,
}

/// One worker's event loop: its epoll set, its open connections (at most
/// `limit`), their deadlines, and the model's source.
pub struct EventLoop<'l> {
    ctx: &'l WorkerCtx<'l>,
    epoll: Epoll,
    limit: usize,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    spare: Vec<Vec<u8>>,
    open: usize,
    gen: u32,
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    source: Option<Source<'l>>,
    events: Vec<libc::epoll_event>,
}

impl<'l> EventLoop<'l> {
    /// A loop for `ctx`'s worker, holding up to `ctx.concurrency()` connections.
    pub fn new(ctx: &'l WorkerCtx<'l>) -> io::Result<EventLoop<'l>> {
        let limit = ctx.concurrency();
        Ok(EventLoop {
            ctx,
            epoll: Epoll::new()?,
            limit,
            conns: Vec::new(),
            free: Vec::new(),
            spare: Vec::new(),
            open: 0,
            gen: 0,
            timers: BinaryHeap::new(),
            source: None,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; (limit + 1).min(MAX_EVENTS)],
        })
    }

    /// The loop's epoll descriptor (for the worker's slot).
    pub fn epoll_raw(&self) -> std::os::fd::RawFd {
        self.epoll.raw()
    }

    /// Whether another connection may be taken now.
    pub fn has_room(&self) -> bool {
        self.open < self.limit
    }

    /// How many more connections may be taken now.
    pub fn limit_left(&self) -> usize {
        self.limit - self.open
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Watches `fd` (a listener or a channel) for `events` (EPOLLIN, maybe
    /// EPOLLEXCLUSIVE), registered with `tag`, whenever there is room.
    pub fn watch(&mut self, fd: BorrowedFd<'l>, events: u32, tag: u64) -> io::Result<()> {
        self.unwatch()?;
        self.source = Some(Source {
            fd,
            events,
            tag: tag & !CONN,
            registered: false,
        });
        self.sync_source()
    }

    /// Stops watching the source.
    pub fn unwatch(&mut self) -> io::Result<()> {
        match self.source.take() {
            Some(s) if s.registered => self.epoll.delete(s.fd),
            _ => Ok(()),
        }
    }

    /// Registers the source while there is room, and takes it out when full.
    fn sync_source(&mut self) -> io::Result<()> {
        let room = self.has_room();
        let Some(s) = self.source.as_mut() else { return Ok(()) };
        if room && !s.registered {
            self.epoll.add(s.fd, s.events, s.tag)?;
            s.registered = true;
        } else if !room && s.registered {
            self.epoll.delete(s.fd)?;
            s.registered = false;
        }
        Ok(())
    }

    /// Serves the open connections until the source is readable with room
    /// for another connection (`Ok(true)`), or `timeout` has passed
    /// (`Ok(false)`; `None`: no limit).
    pub fn next_ready(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        let until = timeout.map(|t| Instant::now() + t);
        loop {
            self.fire_timers()?;
            let now = Instant::now();
            let mut wait = self
                .timers
                .peek()
                .map(|Reverse((at, _, _))| at.saturating_duration_since(now));
            if let Some(u) = until {
                if now >= u {
                    return Ok(false);
                }
                let left = u - now;
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
            let n = match self.epoll.wait(&mut self.events, wait) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut source_ready = false;
            for k in 0..n {
                let tag = self.events[k].u64;
                if tag & CONN == 0 {
                    source_ready = true;
                    continue;
                }
                let (i, gen) = ((tag & 0xffff_ffff) as usize, ((tag & !CONN) >> 32) as u32);
                if self.conns.get(i).and_then(|c| c.as_ref()).is_some_and(|c| c.gen == gen) {
                    self.step(i)?;
                }
            }
            let registered = self.source.as_ref().is_some_and(|s| s.registered);
            if source_ready && registered && self.has_room() {
                return Ok(true);
            }
        }
    }

    /// Takes one connection: counts it (and stalls if a stall is due), makes
    /// it non-blocking, registers it and starts reading. Errors on the
    /// connection are counted and close it; an `Err` is the loop's own.
    pub fn take(&mut self, fd: OwnedFd) -> io::Result<()> {
        let accepted_ns = self.ctx.opened();
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.gen = self.gen.wrapping_add(1) & 0x7fff_ffff;
        let gen = self.gen;
        let tag = CONN | (u64::from(gen) << 32) | i as u64;
        let ready = sys::set_nonblocking(fd.as_fd()).and_then(|()| {
            let ev = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
            self.epoll.add(fd.as_fd(), ev, tag)
        });
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(MAX_REQUEST, 0);
        self.conns[i] = Some(Conn {
            fd,
            gen,
            buf,
            start: 0,
            len: 0,
            served: 0,
            state: State::Head,
            accepted_ns,
        });
        self.open += 1;
        self.sync_source()?;
        if ready.is_err() {
            return self.close(i, true);
        }
        self.step(i)
    }

    /// Accepts from the non-blocking `listener` until it is empty (counting an
    /// empty accept), the loop is full, or `max` were taken; returns how many.
    pub fn accept_from(&mut self, listener: BorrowedFd<'_>, max: usize) -> io::Result<u64> {
        let mut got = 0u64;
        while self.has_room() && (got as usize) < max {
            match sys::accept(listener) {
                Ok(conn) => {
                    got += 1;
                    self.take(conn)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Slot::bump(self.ctx.slot.empty_accepts);
                    break;
                }
                Err(e) if transient_accept_error(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Moves every connection whose deadline has passed on to writing.
    fn fire_timers(&mut self) -> io::Result<()> {
        let now = Instant::now();
        while let Some(&Reverse((at, i, gen))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(i).and_then(|c| c.as_mut()) else {
                continue;
            };
            if c.gen != gen {
                continue;
            }
            if let State::Service { keep_alive } = c.state {
                c.state = State::Write {
                    keep_alive,
                    done: 0,
                    responded_ns: sys::monotonic_ns(),
                };
                self.step(i)?;
            }
        }
        Ok(())
    }

    /// Runs connection `i` until it waits or ends; closes it if it ended.
    fn step(&mut self, i: usize) -> io::Result<()> {
        let Some(c) = self.conns[i].as_mut() else { return Ok(()) };
        match advance(self.ctx, &mut self.timers, c, i) {
            Step::Wait => Ok(()),
            Step::Close(error) => self.close(i, error),
        }
    }

    fn close(&mut self, i: usize, error: bool) -> io::Result<()> {
        let Some(c) = self.conns[i].take() else { return Ok(()) };
        // Closing the descriptor takes it out of the epoll set (a stale
        // event or deadline is told apart by its generation).
        drop(c.fd);
        self.spare.push(c.buf);
        self.free.push(i);
        if error {
            Slot::bump(self.ctx.slot.errors);
        }
        self.ctx.closed();
        self.open -= 1;
        self.sync_source()
    }
}

/// One connection's state machine, run until it would block, waits for its
/// deadline, or ends.
fn advance(
    ctx: &WorkerCtx<'_>,
    timers: &mut BinaryHeap<Reverse<(Instant, usize, u32)>>,
    c: &mut Conn,
    i: usize,
) -> Step {
    loop {
        match c.state {
            State::Head => {
                if let Some((keep_alive, left)) = take_request(&c.buf, &mut c.start, c.len) {
                    c.state = State::Body { left, keep_alive };
                    continue;
                }
                if compact(&mut c.buf, &mut c.start, &mut c.len).is_err() {
                    return Step::Close(true);
                }
                match sys::read(c.fd.as_fd(), &mut c.buf[c.len..]) {
                    // The client closed: fine between requests, an error inside one.
                    Ok(0) => return Step::Close(!(c.served > 0 && c.len == 0)),
                    Ok(n) => c.len += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Close(true),
                }
            }
            State::Body { left: 0, keep_alive } => match ctx.begin_work() {
                Some(d) => {
                    timers.push(Reverse((Instant::now() + d, i, c.gen)));
                    c.state = State::Service { keep_alive };
                    return Step::Wait;
                }
                None => {
                    c.state = State::Write {
                        keep_alive,
                        done: 0,
                        responded_ns: sys::monotonic_ns(),
                    }
                }
            },
            State::Body { left, keep_alive } => {
                let want = left.min(MAX_REQUEST);
                match sys::read(c.fd.as_fd(), &mut c.buf[..want]) {
                    Ok(0) => return Step::Close(true),
                    Ok(n) => {
                        c.state = State::Body {
                            left: left - n,
                            keep_alive,
                        };
                        c.start = 0;
                        c.len = 0;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Close(true),
                }
            }
            State::Service { .. } => return Step::Wait,
            State::Write {
                keep_alive,
                done,
                responded_ns,
            } => {
                // Stamped again on each attempt, with the same values.
                let response = ctx.response(keep_alive, c.accepted_ns, responded_ns);
                let (wrote, len) = (sys::write(c.fd.as_fd(), &response[done..]), response.len());
                drop(response);
                match wrote {
                    Ok(n) if done + n < len => {
                        c.state = State::Write {
                            keep_alive,
                            done: done + n,
                            responded_ns,
                        }
                    }
                    Ok(_) => {
                        Slot::bump(ctx.slot.requests);
                        c.served += 1;
                        if !keep_alive {
                            return Step::Close(false);
                        }
                        if c.start == c.len {
                            c.start = 0;
                            c.len = 0;
                        }
                        c.state = State::Head;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Close(true),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::worker::{Service, WorkerPlan};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// Serves `clients` socket pairs at once on a loop of `k`, each client
    /// sending `request`, until all are closed; returns the counters and the
    /// time it took.
    fn serve(
        k: usize,
        clients: usize,
        request: &[u8],
        service: Service,
    ) -> (crate::counters::Snapshot, Duration, Vec<String>) {
        let counters = Counters::new(1).unwrap();
        let plan = WorkerPlan {
            service,
            concurrency: k,
            ..WorkerPlan::default()
        };
        let ctx = WorkerCtx::new(0, counters.slot(0), counters.header(), &plan);
        let mut lp = EventLoop::new(&ctx).unwrap();
        let mut ends = Vec::new();
        let t = Instant::now();
        for _ in 0..clients {
            let (mut client, server) = UnixStream::pair().unwrap();
            client.write_all(request).unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            lp.take(OwnedFd::from(server)).unwrap();
            ends.push(client);
        }
        while lp.open() > 0 {
            lp.next_ready(Some(Duration::from_millis(100))).unwrap();
        }
        let took = t.elapsed();
        let got = ends
            .into_iter()
            .map(|mut c| {
                let mut s = String::new();
                c.read_to_string(&mut s).unwrap();
                s
            })
            .collect();
        (counters.slot(0).snapshot(), took, got)
    }

    #[test]
    fn sleeps_overlap_instead_of_adding_up() {
        let req = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let (s, took, got) = serve(8, 8, req, Service::Sleep(Duration::from_millis(50)));
        assert_eq!(
            (s.accepted, s.requests, s.errors, s.active, s.finished),
            (8, 8, 0, 0, 8)
        );
        // Served one after another the sleeps would take their sum, 400 ms at
        // the least; overlapped, about one of them. (needs a quiet machine: a
        // pause of the whole process of over 350 ms would fail it.)
        assert!(took >= Duration::from_millis(50), "a sleep ended early: {took:?}");
        assert!(took < 8 * Duration::from_millis(50), "8 sleeps of 50 ms took {took:?}");
        assert!(got.iter().all(|g| g.ends_with(crate::worker::BODY)));
    }

    #[test]
    fn keep_alive_pipelined_and_bodies_are_served() {
        let mut req = Vec::new();
        req.extend_from_slice(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        req.extend_from_slice(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        let (s, _, got) = serve(4, 3, &req, Service::None);
        assert_eq!((s.accepted, s.requests, s.errors, s.finished), (3, 9, 0, 3));
        assert!(got.iter().all(|g| g.matches("x-worker: 0").count() == 3));
    }

    #[test]
    fn early_close_is_an_error() {
        let (s, _, _) = serve(2, 2, b"GET / HT", Service::None);
        assert_eq!((s.accepted, s.requests, s.errors, s.finished), (2, 0, 2, 2));
    }
}
