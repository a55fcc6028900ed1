//! What a run measured, and how per-thread results are combined.
//!
//! Each engine thread records into its own [`Recorder`] (no sharing on the
//! hot path; workers are found by a linear scan over their id bytes, so a
//! response costs no allocation). At the end the recorders are merged into
//! one [`Report`], which keeps the conservation invariants
//! `scheduled == started + dropped`, `started == completed + errors.total()`,
//! `Σ per_worker.completed == completed` and `Σ per_worker.requests == requests`.
//! With intervals ([`Recorder::with_intervals`]), each worker's counts are
//! also split by interval ([`IntervalHist::workers`]), and summed over every
//! interval and thread they equal that worker's `completed` and `requests`.
//!
//! Latency is kept in HdrHistograms (microseconds, 3 significant digits), so
//! memory does not grow with the number of requests. They are auto-resizing
//! ([`new_latency_histogram`]): one starts at 16 KiB and grows by 8 KiB per
//! doubling of the largest value it has seen, so the loopback latencies this
//! tool sees (up to tens of ms) take about 40 KiB, where fixed bounds of 1 µs
//! .. 60 s would take 136 KiB for every histogram (4 phases × every worker ×
//! every thread). Values are clamped to 1 ..= [`LATENCY_MAX_US`], which caps
//! a histogram at 184 KiB.

use std::fmt;
use std::io;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

/// Highest latency tracked, in microseconds (one hour). Larger values are clamped.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Worker id under which responses that name no worker are counted (no
/// attribution header, or an empty first body line; see
/// [`crate::Attribution`]).
pub const UNKNOWN_WORKER: &str = "?";

/// An empty latency histogram (µs, 3 significant digits), auto-resizing;
/// see the module doc for why.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits are valid")
}

/// Microseconds, clamped to 1 ..= [`LATENCY_MAX_US`].
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, LATENCY_MAX_US)
}

fn record_us(h: &mut Histogram<u64>, us: u64) {
    // Grows the histogram if needed; fails only if it cannot grow (usize
    // overflow, impossible for values up to an hour), then clamps.
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

/// Why a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// ECONNREFUSED: nothing listening, or the accept queue overflowed.
    Refused,
    /// ECONNRESET or EPIPE.
    Reset,
    /// The per-connection deadline passed (or the kernel gave up: ETIMEDOUT).
    Timeout,
    /// EADDRNOTAVAIL: out of ephemeral ports for this source address.
    AddrNotAvailable,
    /// Not an HTTP response, header block too large, or cut short.
    Malformed,
    /// Anything else (EMFILE, ...).
    Other,
    /// Still in flight when the run was cancelled (SIGINT, SIGTERM) and the
    /// short grace that followed ran out: closed by the generator.
    Cancelled,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::Refused,
        ErrorClass::Reset,
        ErrorClass::Timeout,
        ErrorClass::AddrNotAvailable,
        ErrorClass::Malformed,
        ErrorClass::Other,
        ErrorClass::Cancelled,
    ];

    /// The name used in output and CSV.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Reset => "reset",
            ErrorClass::Timeout => "timeout",
            ErrorClass::AddrNotAvailable => "addr_not_available",
            ErrorClass::Malformed => "malformed",
            ErrorClass::Other => "other",
            ErrorClass::Cancelled => "cancelled",
        }
    }

    /// Classifies an errno value.
    pub fn from_errno(errno: i32) -> ErrorClass {
        match errno {
            libc::ECONNREFUSED => ErrorClass::Refused,
            libc::ECONNRESET | libc::EPIPE => ErrorClass::Reset,
            libc::EADDRNOTAVAIL => ErrorClass::AddrNotAvailable,
            libc::ETIMEDOUT => ErrorClass::Timeout,
            _ => ErrorClass::Other,
        }
    }

    /// Classifies an I/O error (errors without an errno are `Other`).
    pub fn from_io(e: &io::Error) -> ErrorClass {
        e.raw_os_error().map_or(ErrorClass::Other, ErrorClass::from_errno)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Failed connections by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    pub refused: u64,
    pub reset: u64,
    pub timeout: u64,
    pub addr_not_available: u64,
    pub malformed: u64,
    pub other: u64,
    pub cancelled: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).sum()
    }

    /// `(name, count)` for every class, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ErrorClass::ALL.into_iter().map(|c| (c.name(), self.get(c)))
    }

    pub fn get(&self, class: ErrorClass) -> u64 {
        match class {
            ErrorClass::Refused => self.refused,
            ErrorClass::Reset => self.reset,
            ErrorClass::Timeout => self.timeout,
            ErrorClass::AddrNotAvailable => self.addr_not_available,
            ErrorClass::Malformed => self.malformed,
            ErrorClass::Other => self.other,
            ErrorClass::Cancelled => self.cancelled,
        }
    }

    pub fn add(&mut self, class: ErrorClass, n: u64) {
        let slot = match class {
            ErrorClass::Refused => &mut self.refused,
            ErrorClass::Reset => &mut self.reset,
            ErrorClass::Timeout => &mut self.timeout,
            ErrorClass::AddrNotAvailable => &mut self.addr_not_available,
            ErrorClass::Malformed => &mut self.malformed,
            ErrorClass::Other => &mut self.other,
            ErrorClass::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }

    fn merge(&mut self, other: &ErrorCounts) {
        for class in ErrorClass::ALL {
            self.add(class, other.get(class));
        }
    }
}

/// Latency by phase, microseconds. For the first request of a connection:
///
/// - `connect`: actual start (socket created, connect called) to the
///   connection being established (first EPOLLOUT).
/// - `ttfb`: actual start to the first response byte read.
/// - `total`: *intended* start to response complete (corrected for
///   coordinated omission; in the closed loop the intended start is the
///   actual start).
/// - `total_uncorrected`: actual start to response complete.
/// - `queue`: connection established (as the generator saw it) to the
///   server taking it (`x-accepted-ns`): the time it waited in the accept
///   queue (and, for a dispatcher, in its hand-off).
/// - `service`: the server taking the connection to beginning this response
///   (`x-responded-ns`).
///
/// `queue` and `service` are recorded for the first response of a
/// connection, only when the server stamped it (see [`crate::Stamps`]);
/// both sides read CLOCK_MONOTONIC, so no clock offset enters them.
///
/// For later requests on a keep-alive connection the start of the request is
/// when its send began: `ttfb` counts from there, and `total` =
/// `total_uncorrected` = send start to response complete.
///
/// `ttfb`, `total` and `total_uncorrected` have one value per response;
/// `connect` one per connection. In [`Report::phases`], `connect` counts every
/// connection that was established (including those that failed later); in
/// [`WorkerReport::phases`], the completed connections counted for that worker.
#[derive(Clone)]
pub struct Phases {
    pub connect: Histogram<u64>,
    pub queue: Histogram<u64>,
    pub service: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub total: Histogram<u64>,
    pub total_uncorrected: Histogram<u64>,
}

impl Phases {
    pub fn new() -> Phases {
        Phases {
            connect: new_latency_histogram(),
            queue: new_latency_histogram(),
            service: new_latency_histogram(),
            ttfb: new_latency_histogram(),
            total: new_latency_histogram(),
            total_uncorrected: new_latency_histogram(),
        }
    }

    /// `(name, histogram)` for each phase, in a fixed order.
    pub fn iter(&self) -> [(&'static str, &Histogram<u64>); 6] {
        [
            ("connect", &self.connect),
            ("queue", &self.queue),
            ("service", &self.service),
            ("ttfb", &self.ttfb),
            ("total", &self.total),
            ("total_uncorrected", &self.total_uncorrected),
        ]
    }

    /// True if nothing was recorded in any phase.
    pub fn is_empty(&self) -> bool {
        self.iter().iter().all(|(_, h)| h.is_empty())
    }

    fn add(&mut self, other: &Phases) {
        add(&mut self.connect, &other.connect);
        add(&mut self.queue, &other.queue);
        add(&mut self.service, &other.service);
        add(&mut self.ttfb, &other.ttfb);
        add(&mut self.total, &other.total);
        add(&mut self.total_uncorrected, &other.total_uncorrected);
    }
}

impl Default for Phases {
    fn default() -> Self {
        Phases::new()
    }
}

impl fmt::Debug for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Phases");
        for (name, h) in self.iter() {
            let p50 = if h.is_empty() { 0 } else { h.value_at_quantile(0.5) };
            d.field(name, &format_args!("n={} p50={}us", h.len(), p50));
        }
        d.finish()
    }
}

/// What one worker was attributed in one interval, by one thread.
///
/// Counted like [`WorkerReport`]: summed over every interval of every
/// thread, `connections` and `requests` equal the worker's
/// [`WorkerReport::completed`] and [`WorkerReport::requests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalWorker {
    /// The worker id, as in [`WorkerReport::id`] (responses that named no
    /// worker count under [`UNKNOWN_WORKER`]).
    pub id: String,
    /// Connections completed in the interval whose FIRST response named this
    /// worker (as [`WorkerReport::completed`]).
    pub connections: u64,
    /// Responses completed in the interval that named this worker (as
    /// [`WorkerReport::requests`]).
    pub requests: u64,
}

/// One thread's histogram and per-worker counts for one interval, for an
/// HdrHistogram interval log and per-worker time series.
///
/// Every response and every completed connection is counted in exactly one
/// interval: the one its completion time falls in (or, if the thread had
/// already moved past that interval, the thread's current one). What
/// completes after a thread's last tick is sent with the last interval when
/// the run ends, so the sums over all intervals and threads equal the
/// final [`Report`]'s counts. Intervals are sent with `record = false` too:
/// then `total` is empty but `workers` is counted as usual.
#[derive(Clone)]
pub struct IntervalHist {
    /// The engine thread that recorded it (0 .. threads).
    pub thread: usize,
    /// Interval number: 0, 1, 2, ... without gaps for each thread.
    pub index: u64,
    /// Start of the interval, since the run start (`index * every`).
    pub start: Duration,
    /// `every`, except for the last interval of the run, which ends when the
    /// run ends (the same for every thread).
    pub length: Duration,
    /// Corrected total latency (µs) of the requests this thread completed in
    /// the interval, all workers; empty if none (or with `record = false`).
    pub total: Histogram<u64>,
    /// Per worker, what this thread attributed to it in the interval: only
    /// workers with a non-zero count, in no particular order; empty if
    /// nothing completed.
    pub workers: Vec<IntervalWorker>,
}

impl fmt::Debug for IntervalHist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntervalHist")
            .field("thread", &self.thread)
            .field("index", &self.index)
            .field("start", &self.start)
            .field("length", &self.length)
            .field("count", &self.total.len())
            .field("workers", &self.workers)
            .finish()
    }
}

/// What one worker served.
#[derive(Clone)]
pub struct WorkerReport {
    /// The worker id the responses carried ([`crate::Attribution`]), or
    /// [`UNKNOWN_WORKER`].
    pub id: String,
    /// Completed connections counted for this worker: those whose FIRST
    /// response named it (with one request per connection: the connections
    /// it served).
    pub completed: u64,
    /// Microseconds, corrected total latency of the responses it sent (the
    /// same values as `phases.total`).
    pub latency: Histogram<u64>,
    /// Responses that named this worker (any connection, any position).
    pub requests: u64,
    pub phases: Phases,
}

impl fmt::Debug for WorkerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerReport")
            .field("id", &self.id)
            .field("completed", &self.completed)
            .field("requests", &self.requests)
            .field("latency_max_us", &self.latency.max())
            .finish()
    }
}

/// The result of one run.
#[derive(Clone)]
pub struct Report {
    /// First connection start -> last connection end.
    pub elapsed: Duration,
    /// Connections attempted.
    pub started: u64,
    /// Connections whose every response arrived whole and well-formed (any
    /// status code).
    pub completed: u64,
    /// Failed connections by class; `started == completed + errors.total()`.
    pub errors: ErrorCounts,
    /// Microseconds, corrected total latency per response, over all workers
    /// (the same values as `phases.total`).
    pub latency: Histogram<u64>,
    /// Sorted by id: numerically if every id (other than `?`) is a u64,
    /// lexicographically otherwise; `?` always last.
    pub per_worker: Vec<WorkerReport>,
    /// Arrivals whose intended time came before the run stopped (open loop:
    /// all of them unless cancelled; closed loop: = `started`).
    /// `scheduled == started + dropped`.
    pub scheduled: u64,
    /// Open loop: arrivals that found every slot of their thread busy after
    /// their intended time and waited for one (they were started, late).
    pub late: u64,
    /// Open loop: arrivals never started, because the run stopped while they
    /// waited for a slot, or they waited longer than the timeout.
    pub dropped: u64,
    /// Responses received whole (including those on connections that failed
    /// later). With one request per connection, = `completed` unless a
    /// connection failed after its response.
    pub requests: u64,
    pub phases: Phases,
    /// Wall clock when the run started (an interval log's StartTime).
    pub run_start: SystemTime,
    /// With [`crate::Config::trace`]: every connection's first response,
    /// in no particular order.
    pub traced: Vec<Traced>,
}

/// One connection's milestones, CLOCK_MONOTONIC ns (the clock of the
/// servers' stamps): kept with [`crate::Config::trace`] for the first
/// response of every connection whose establishment was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// The worker the response named ([`UNKNOWN_WORKER`] if none).
    pub worker: String,
    /// connect() called.
    pub start_ns: u64,
    /// Established, as the generator saw it (its first EPOLLOUT).
    pub established_ns: u64,
    /// The server's stamps, if it sent them.
    pub stamps: Option<crate::Stamps>,
    /// Response complete.
    pub done_ns: u64,
}

/// [`Traced`] while the run goes: the worker as the recorder's index.
#[derive(Debug, Clone, Copy)]
struct TraceRow {
    worker: usize,
    start_ns: u64,
    established_ns: u64,
    stamps: Option<crate::Stamps>,
    done_ns: u64,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("elapsed", &self.elapsed)
            .field("scheduled", &self.scheduled)
            .field("started", &self.started)
            .field("late", &self.late)
            .field("dropped", &self.dropped)
            .field("completed", &self.completed)
            .field("requests", &self.requests)
            .field("errors", &self.errors)
            .field("latency_max_us", &self.latency.max())
            .field("phases", &self.phases)
            .field("per_worker", &self.per_worker)
            .finish()
    }
}

impl Report {
    /// Completed connections per second of elapsed time (0 if nothing ran).
    pub fn conn_per_s(&self) -> f64 {
        per_s(self.completed, self.elapsed)
    }

    /// Responses per second of elapsed time (0 if nothing ran).
    pub fn req_per_s(&self) -> f64 {
        per_s(self.requests, self.elapsed)
    }

    /// Completed count per named worker, in `per_worker` order, leaving out
    /// responses that named none ([`UNKNOWN_WORKER`]): the distribution
    /// fairness figures (`records::fairness`) measure.
    pub fn worker_counts(&self) -> Vec<u64> {
        self.per_worker
            .iter()
            .filter(|w| w.id != UNKNOWN_WORKER)
            .map(|w| w.completed)
            .collect()
    }

    /// The worker with this id, if it served anything.
    pub fn worker(&self, id: &str) -> Option<&WorkerReport> {
        self.per_worker.iter().find(|w| w.id == id)
    }
}

fn per_s(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// When one request's milestones happened (see [`Phases`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimes {
    /// Intended start: the scheduled time (open loop, first request of a
    /// connection), else the same as `start`.
    pub intended: Instant,
    /// Actual start: connect start for the first request of a connection,
    /// send start for later ones.
    pub start: Instant,
    /// First response byte read.
    pub first_byte: Instant,
    /// Response complete.
    pub done: Instant,
    /// When the connection was seen established: for the first response
    /// of a connection only.
    pub established: Option<Instant>,
    /// The server's stamps, if it sent them.
    pub stamps: Option<crate::Stamps>,
}

struct WorkerStats {
    id: Vec<u8>,
    completed: u64,
    requests: u64,
    phases: Phases,
}

/// One worker's counts in the current interval.
#[derive(Debug, Clone, Copy, Default)]
struct IntervalCount {
    connections: u64,
    requests: u64,
}

/// A thread's interval histogram in progress.
struct IntervalState {
    thread: usize,
    run_start: Instant,
    every: Duration,
    index: u64,
    /// `index * every`.
    start: Duration,
    /// `run_start + start + every`: when this interval ends.
    end: Instant,
    hist: Histogram<u64>,
    /// Indexed like `Recorder::workers` (same length: a slot is added with
    /// each new worker), zeroed when the interval is sent.
    counts: Vec<IntervalCount>,
    sink: Sender<IntervalHist>,
}

impl IntervalState {
    /// Sends every interval that ended by `now`; `workers` names the slots
    /// of `counts`.
    fn roll(&mut self, now: Instant, workers: &[WorkerStats]) {
        while now >= self.end {
            self.send(self.every, workers);
        }
    }

    /// Sends the current interval with this length and starts the next.
    /// Allocates only here (once per interval): the new histogram, and the
    /// list and ids of the workers that had something in it.
    fn send(&mut self, length: Duration, workers: &[WorkerStats]) {
        let total = std::mem::replace(&mut self.hist, new_latency_histogram());
        let workers = self
            .counts
            .iter_mut()
            .zip(workers)
            .filter(|(c, _)| c.connections != 0 || c.requests != 0)
            .map(|(c, w)| {
                let c = std::mem::take(c);
                IntervalWorker {
                    id: String::from_utf8_lossy(&w.id).into_owned(),
                    connections: c.connections,
                    requests: c.requests,
                }
            })
            .collect();
        // A receiver that hung up does not stop the run.
        let _ = self.sink.send(IntervalHist {
            thread: self.thread,
            index: self.index,
            start: self.start,
            length,
            total,
            workers,
        });
        self.index += 1;
        self.start += self.every;
        self.end += self.every;
    }
}

/// One thread's measurements; merged into a [`Report`] at the end.
///
/// Public so that its per-response cost can be benchmarked
/// (`benches/record.rs`); the engine calls, per connection, [`Recorder::start`],
/// then [`Recorder::response`] for each response, then
/// [`Recorder::connection_ok`] or [`Recorder::connection_failed`].
pub struct Recorder {
    record: bool,
    scheduled: u64,
    started: u64,
    late: u64,
    dropped: u64,
    completed: u64,
    requests: u64,
    errors: ErrorCounts,
    phases: Phases,
    workers: Vec<WorkerStats>,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
    interval: Option<IntervalState>,
    clock: Monotonic,
    /// With [`Recorder::traced`]: one row per connection's first response.
    trace: Option<Vec<TraceRow>>,
}

/// Reads an [`Instant`] as CLOCK_MONOTONIC nanoseconds, the servers' stamps'
/// clock. On Linux an `Instant` is that clock, so the only error is how far
/// apart the two reads that pin them together fell (tens of ns).
#[derive(Debug, Clone, Copy)]
struct Monotonic {
    at: Instant,
    ns: u64,
}

impl Monotonic {
    fn now() -> Monotonic {
        let before = Instant::now();
        let ns = sys::monotonic_ns();
        let after = Instant::now();
        Monotonic {
            at: before + (after - before) / 2,
            ns,
        }
    }

    /// `t` in CLOCK_MONOTONIC ns.
    fn ns(&self, t: Instant) -> u64 {
        if t >= self.at {
            self.ns + (t - self.at).as_nanos() as u64
        } else {
            self.ns.saturating_sub((self.at - t).as_nanos() as u64)
        }
    }
}

/// Microseconds from `from_ns` to `to_ns`, 0 if `to_ns` came first.
fn micros_between(from_ns: u64, to_ns: u64) -> u64 {
    to_ns.saturating_sub(from_ns) / 1000
}

impl Recorder {
    /// `record = false`: count and attribute, but keep every histogram empty.
    pub fn new(record: bool) -> Recorder {
        Recorder {
            record,
            scheduled: 0,
            started: 0,
            late: 0,
            dropped: 0,
            completed: 0,
            requests: 0,
            errors: ErrorCounts::default(),
            phases: Phases::new(),
            workers: Vec::new(),
            first_start: None,
            last_end: None,
            interval: None,
            clock: Monotonic::now(),
            trace: None,
        }
    }

    /// `on`: also keep every connection's milestones ([`Report::traced`]).
    pub fn traced(mut self, on: bool) -> Recorder {
        self.trace = on.then(Vec::new);
        self
    }

    /// Also keep an interval histogram and per-worker interval counts, sent
    /// to `sink` as each interval of length `every` (counted from
    /// `run_start`) ends; see [`IntervalHist`]. Intervals roll forward on
    /// [`Recorder::tick`], [`Recorder::response`] (at its `done` time) and
    /// [`Recorder::connection_ok`]. Works with `record = false` too (the
    /// histograms are then empty, the counts are not).
    pub fn with_intervals(
        mut self,
        thread: usize,
        run_start: Instant,
        every: Duration,
        sink: Sender<IntervalHist>,
    ) -> Recorder {
        self.interval = Some(IntervalState {
            thread,
            run_start,
            every,
            index: 0,
            start: Duration::ZERO,
            end: run_start + every,
            hist: new_latency_histogram(),
            counts: vec![IntervalCount::default(); self.workers.len()],
            sink,
        });
        self
    }

    /// A connection attempt begins.
    pub fn start(&mut self, now: Instant) {
        self.started += 1;
        self.first_start.get_or_insert(now);
    }

    /// `n` more arrivals came due (open loop; the closed loop adds `started`).
    pub fn add_scheduled(&mut self, n: u64) {
        self.scheduled += n;
    }

    /// The connection just started had waited for a free slot.
    pub fn late(&mut self) {
        self.late += 1;
    }

    /// `n` arrivals were not started.
    pub fn dropped(&mut self, n: u64) {
        self.dropped += n;
    }

    /// Index of the worker with this id (or `?`), added if new.
    fn worker_index(&mut self, worker: Option<&[u8]>) -> usize {
        let id = worker.unwrap_or(UNKNOWN_WORKER.as_bytes());
        match self.workers.iter().position(|w| w.id == id) {
            Some(i) => i,
            None => {
                self.workers.push(WorkerStats {
                    id: id.to_vec(),
                    completed: 0,
                    requests: 0,
                    phases: Phases::new(),
                });
                if let Some(iv) = &mut self.interval {
                    iv.counts.push(IntervalCount::default());
                }
                self.workers.len() - 1
            }
        }
    }

    /// A whole response from `worker` (`None`: it named no worker).
    /// Returns the worker's index, to be passed to
    /// [`Recorder::connection_ok`] if this was the connection's first response.
    pub fn response(&mut self, worker: Option<&[u8]>, t: &RequestTimes) -> usize {
        self.requests += 1;
        let idx = self.worker_index(worker);
        if let Some(iv) = &mut self.interval {
            iv.roll(t.done, &self.workers);
            iv.counts[idx].requests += 1;
        }
        let w = &mut self.workers[idx];
        w.requests += 1;
        // A connection's first response: when it was established, on the
        // servers' clock (for the trace and the queue phase).
        let established_ns = t
            .established
            .filter(|_| self.record || self.trace.is_some())
            .map(|e| self.clock.ns(e));
        if let (Some(trace), Some(established_ns)) = (&mut self.trace, established_ns) {
            trace.push(TraceRow {
                worker: idx,
                start_ns: self.clock.ns(t.start),
                established_ns,
                stamps: t.stamps,
                done_ns: self.clock.ns(t.done),
            });
        }
        if self.record {
            let ttfb = micros(t.first_byte.saturating_duration_since(t.start));
            let total = micros(t.done.saturating_duration_since(t.intended));
            let unc = micros(t.done.saturating_duration_since(t.start));
            // Queue and service: from the first response's stamps.
            let split = established_ns.zip(t.stamps).map(|(e, s)| {
                (
                    micros_between(e, s.accepted_ns),
                    micros_between(s.accepted_ns, s.responded_ns),
                )
            });
            for p in [&mut w.phases, &mut self.phases] {
                record_us(&mut p.ttfb, ttfb);
                record_us(&mut p.total, total);
                record_us(&mut p.total_uncorrected, unc);
                if let Some((queue, service)) = split {
                    record_us(&mut p.queue, queue);
                    record_us(&mut p.service, service);
                }
            }
            if let Some(iv) = &mut self.interval {
                record_us(&mut iv.hist, total);
            }
        }
        idx
    }

    /// A connection delivered all its responses; it counts for
    /// `first_worker` (from [`Recorder::response`] for its first response),
    /// in the final report and in the interval `now` falls in.
    /// `connect`: how long it took to establish.
    pub fn connection_ok(&mut self, first_worker: usize, connect: Option<Duration>, now: Instant) {
        self.completed += 1;
        if let Some(iv) = &mut self.interval {
            iv.roll(now, &self.workers);
            if let Some(c) = iv.counts.get_mut(first_worker) {
                c.connections += 1;
            }
        }
        let c = connect.filter(|_| self.record).map(micros);
        if let Some(us) = c {
            record_us(&mut self.phases.connect, us);
        }
        if let Some(w) = self.workers.get_mut(first_worker) {
            w.completed += 1;
            if let Some(us) = c {
                record_us(&mut w.phases.connect, us);
            }
        }
        self.end(now);
    }

    /// A connection failed (its responses so far stay counted in `requests`).
    /// `connect`: how long it took to establish, if it was.
    pub fn connection_failed(&mut self, class: ErrorClass, connect: Option<Duration>, now: Instant) {
        self.errors.add(class, 1);
        if let Some(d) = connect.filter(|_| self.record) {
            record_us(&mut self.phases.connect, micros(d));
        }
        self.end(now);
    }

    /// Connection attempts so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// When the current interval ends (if intervals are kept).
    pub fn next_tick(&self) -> Option<Instant> {
        self.interval.as_ref().map(|iv| iv.end)
    }

    /// Sends the intervals that ended by `now`.
    pub fn tick(&mut self, now: Instant) {
        if let Some(iv) = &mut self.interval {
            iv.roll(now, &self.workers);
        }
    }

    /// At the end of the run: sends what is left, up to and including
    /// interval `last` (which ends at `run_end`), so that every thread sends
    /// the same intervals `0 ..= last`. What completed since the last tick
    /// (histogram and worker counts) goes out with the current interval.
    pub(crate) fn flush_intervals(&mut self, run_end: Instant, last: u64) {
        let Some(iv) = &mut self.interval else { return };
        while iv.index <= last {
            let length = if iv.index == last {
                run_end.saturating_duration_since(iv.run_start + iv.start)
            } else {
                iv.every
            };
            iv.send(length, &self.workers);
        }
    }

    fn end(&mut self, now: Instant) {
        match self.last_end {
            Some(t) if t >= now => {}
            _ => self.last_end = Some(now),
        }
    }

    /// Adds another thread's measurements (its interval state is dropped).
    pub fn merge(&mut self, other: Recorder) {
        self.scheduled += other.scheduled;
        self.started += other.started;
        self.late += other.late;
        self.dropped += other.dropped;
        self.completed += other.completed;
        self.requests += other.requests;
        self.errors.merge(&other.errors);
        self.phases.add(&other.phases);
        // Where each of `other`'s workers is in `self.workers`.
        let mut to = Vec::with_capacity(other.workers.len());
        for w in other.workers {
            match self.workers.iter().position(|m| m.id == w.id) {
                Some(i) => {
                    let m = &mut self.workers[i];
                    m.completed += w.completed;
                    m.requests += w.requests;
                    m.phases.add(&w.phases);
                    to.push(i);
                }
                None => {
                    self.workers.push(w);
                    to.push(self.workers.len() - 1);
                }
            }
        }
        if let (Some(mine), Some(theirs)) = (&mut self.trace, other.trace) {
            mine.extend(theirs.into_iter().map(|r| TraceRow {
                worker: to[r.worker],
                ..r
            }));
        }
        self.first_start = match (self.first_start, other.first_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = other.last_end {
            self.end(t);
        }
    }

    /// The final report; `run_start` is the wall clock at the start.
    pub fn into_report(self, run_start: SystemTime) -> Report {
        let elapsed = match (self.first_start, self.last_end) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        let ids: Vec<String> = self
            .workers
            .iter()
            .map(|w| String::from_utf8_lossy(&w.id).into_owned())
            .collect();
        let traced = self
            .trace
            .unwrap_or_default()
            .into_iter()
            .map(|r| Traced {
                worker: ids[r.worker].clone(),
                start_ns: r.start_ns,
                established_ns: r.established_ns,
                stamps: r.stamps,
                done_ns: r.done_ns,
            })
            .collect();
        let mut per_worker: Vec<WorkerReport> = self
            .workers
            .into_iter()
            .map(|w| WorkerReport {
                id: String::from_utf8_lossy(&w.id).into_owned(),
                completed: w.completed,
                latency: w.phases.total.clone(),
                requests: w.requests,
                phases: w.phases,
            })
            .collect();
        sort_workers(&mut per_worker);
        Report {
            elapsed,
            started: self.started,
            completed: self.completed,
            errors: self.errors,
            latency: self.phases.total.clone(),
            per_worker,
            scheduled: self.scheduled,
            late: self.late,
            dropped: self.dropped,
            requests: self.requests,
            phases: self.phases,
            run_start,
            traced,
        }
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Auto-resizing histograms take any value the other one holds.
    into.add(from)
        .expect("auto-resizing latency histograms can always be added");
}

/// Numeric order if every id except `?` is a u64, else lexicographic; `?` last.
fn sort_workers(ws: &mut [WorkerReport]) {
    let numeric = ws
        .iter()
        .filter(|w| w.id != UNKNOWN_WORKER)
        .all(|w| w.id.parse::<u64>().is_ok());
    ws.sort_by(|a, b| {
        let unknown = (a.id == UNKNOWN_WORKER).cmp(&(b.id == UNKNOWN_WORKER));
        unknown.then_with(|| {
            if numeric && a.id != UNKNOWN_WORKER && b.id != UNKNOWN_WORKER {
                let (x, y): (u64, u64) = (a.id.parse().unwrap_or(0), b.id.parse().unwrap_or(0));
                x.cmp(&y)
            } else {
                a.id.cmp(&b.id)
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &Report) -> Vec<&str> {
        r.per_worker.iter().map(|w| w.id.as_str()).collect()
    }

    /// One connection with one request that took `latency` and ended at `now`.
    fn complete(rec: &mut Recorder, worker: Option<&[u8]>, latency: Duration, now: Instant) {
        let start = now.checked_sub(latency).unwrap_or(now);
        let t = RequestTimes {
            intended: start,
            start,
            first_byte: now,
            done: now,
            established: None,
            stamps: None,
        };
        let w = rec.response(worker, &t);
        rec.connection_ok(w, Some(Duration::from_micros(1)), now);
    }

    fn error(rec: &mut Recorder, class: ErrorClass, now: Instant) {
        rec.connection_failed(class, None, now);
    }

    #[test]
    fn merge_keeps_the_invariants() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = Recorder::new(true);
        let mut b = Recorder::new(true);
        for (i, w) in [&b"10"[..], b"2", b"10"].into_iter().enumerate() {
            a.start(t0);
            complete(&mut a, Some(w), ms(1), t0 + ms(i as u64));
        }
        a.start(t0);
        error(&mut a, ErrorClass::Refused, t0 + ms(5));
        b.start(t0 + ms(1));
        complete(&mut b, None, ms(2), t0 + ms(20));
        b.start(t0 + ms(1));
        complete(&mut b, Some(b"2"), ms(3), t0 + ms(7));
        b.start(t0 + ms(2));
        error(&mut b, ErrorClass::Malformed, t0 + ms(8));
        a.merge(b);
        let r = a.into_report(SystemTime::UNIX_EPOCH);
        assert_eq!(r.started, 7);
        assert_eq!(r.completed, 5);
        assert_eq!(r.errors.total(), 2);
        assert_eq!(r.started, r.completed + r.errors.total());
        // Fairness counts leave out the response that named no worker.
        assert_eq!(r.worker_counts(), [2, 2]);
        assert_eq!(r.worker("?").unwrap().completed + 4, r.completed);
        assert_eq!(ids(&r), ["2", "10", "?"]);
        assert_eq!(r.worker("2").unwrap().completed, 2);
        assert_eq!(r.worker("10").unwrap().completed, 2);
        assert_eq!(r.latency.len(), 5);
        assert_eq!(r.elapsed, ms(20));
        assert!((r.conn_per_s() - 250.0).abs() < 1e-9);
        assert_eq!((r.errors.refused, r.errors.malformed), (1, 1));
    }

    #[test]
    fn non_numeric_ids_sort_lexicographically() {
        let mut rec = Recorder::new(true);
        let now = Instant::now();
        for w in [&b"b"[..], b"10", b"a", b"9"] {
            rec.start(now);
            complete(&mut rec, Some(w), Duration::from_micros(5), now);
        }
        assert_eq!(ids(&rec.into_report(SystemTime::UNIX_EPOCH)), ["10", "9", "a", "b"]);
    }

    #[test]
    fn stamps_split_the_first_response_into_queue_and_service() {
        let mut rec = Recorder::new(true);
        let t0 = Instant::now();
        let established = t0 + Duration::from_micros(30);
        let est_ns = rec.clock.ns(established);
        let first = |stamps| RequestTimes {
            intended: t0,
            start: t0,
            first_byte: t0 + Duration::from_millis(3),
            done: t0 + Duration::from_millis(3),
            established: Some(established),
            stamps,
        };
        // Waited 2 ms to be taken, served in 500 us.
        let stamps = crate::Stamps {
            accepted_ns: est_ns + 2_000_000,
            responded_ns: est_ns + 2_500_000,
        };
        rec.start(t0);
        let w = rec.response(Some(b"1"), &first(Some(stamps)));
        rec.connection_ok(w, Some(Duration::from_micros(30)), t0);
        // A later response on the connection has no `established`: not split.
        let later = RequestTimes {
            established: None,
            ..first(Some(stamps))
        };
        rec.response(Some(b"1"), &later);
        // Nor is a response without stamps; and a server that took the
        // connection before the generator saw it established queued 0 us.
        rec.start(t0);
        rec.response(Some(b"2"), &first(None));
        let early = crate::Stamps {
            accepted_ns: est_ns - 5_000,
            responded_ns: est_ns + 1_000,
        };
        rec.start(t0);
        rec.response(Some(b"3"), &first(Some(early)));
        let r = rec.into_report(SystemTime::UNIX_EPOCH);
        assert_eq!((r.phases.queue.len(), r.phases.service.len()), (2, 2));
        let w1 = r.worker("1").unwrap();
        assert_eq!(w1.phases.queue.len(), 1);
        assert_eq!(w1.phases.queue.max(), w1.phases.queue.highest_equivalent(2000));
        assert_eq!(w1.phases.service.max(), w1.phases.service.highest_equivalent(500));
        assert!(r.worker("2").unwrap().phases.queue.is_empty());
        let w3 = r.worker("3").unwrap();
        assert_eq!(w3.phases.queue.max(), 0, "clamped to 0");
        assert_eq!(w3.phases.service.max(), 6);
    }

    #[test]
    fn traced_connections_keep_their_worker_through_a_merge() {
        let t0 = Instant::now();
        let times = |established| RequestTimes {
            intended: t0,
            start: t0,
            first_byte: t0,
            done: t0 + Duration::from_micros(100),
            established,
            stamps: None,
        };
        let mut a = Recorder::new(true).traced(true);
        a.response(Some(b"x"), &times(Some(t0)));
        let mut b = Recorder::new(true).traced(true);
        // `b` meets "y" first: its "x" is index 1, `a`'s is 0.
        b.response(Some(b"y"), &times(Some(t0)));
        b.response(Some(b"y"), &times(Some(t0)));
        b.response(Some(b"x"), &times(Some(t0)));
        b.response(Some(b"x"), &times(None)); // a later response: not traced
        let mut untraced = Recorder::new(true);
        untraced.response(Some(b"x"), &times(Some(t0)));
        a.merge(b);
        a.merge(untraced);
        let r = a.into_report(SystemTime::UNIX_EPOCH);
        let mut ids: Vec<&str> = r.traced.iter().map(|t| t.worker.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["x", "x", "y", "y"]);
        assert!(r.traced.iter().all(|t| t.done_ns - t.start_ns == 100_000));
        let off = Recorder::new(true);
        assert!(off.into_report(SystemTime::UNIX_EPOCH).traced.is_empty());
        // Traced also when no latency is recorded (`--no-record`).
        let mut unrecorded = Recorder::new(false).traced(true);
        unrecorded.response(Some(b"x"), &times(Some(t0)));
        assert_eq!(unrecorded.into_report(SystemTime::UNIX_EPOCH).traced.len(), 1);
    }

    #[test]
    fn latency_is_clamped_into_range() {
        let mut rec = Recorder::new(true);
        let now = Instant::now();
        rec.start(now);
        complete(&mut rec, Some(b"1"), Duration::ZERO, now);
        rec.start(now);
        complete(&mut rec, Some(b"1"), Duration::from_secs(100_000), now);
        let r = rec.into_report(SystemTime::UNIX_EPOCH);
        assert_eq!(r.latency.len(), 2);
        assert_eq!(r.latency.min(), 1);
        assert!(r.latency.max() >= LATENCY_MAX_US);
    }

    #[test]
    fn error_names_and_classes() {
        let names: Vec<_> = ErrorCounts::default().iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "refused",
                "reset",
                "timeout",
                "addr_not_available",
                "malformed",
                "other",
                "cancelled"
            ]
        );
        assert_eq!(ErrorClass::from_errno(libc::ECONNREFUSED), ErrorClass::Refused);
        assert_eq!(ErrorClass::from_errno(libc::ECONNRESET), ErrorClass::Reset);
        assert_eq!(ErrorClass::from_errno(libc::EPIPE), ErrorClass::Reset);
        assert_eq!(
            ErrorClass::from_errno(libc::EADDRNOTAVAIL),
            ErrorClass::AddrNotAvailable
        );
        assert_eq!(ErrorClass::from_errno(libc::EMFILE), ErrorClass::Other);
        assert_eq!(ErrorClass::from_io(&io::Error::other("x")), ErrorClass::Other);
        let mut e = ErrorCounts::default();
        e.add(ErrorClass::Timeout, 3);
        e.add(ErrorClass::Other, 1);
        assert_eq!((e.timeout, e.total()), (3, 4));
    }

    #[test]
    fn empty_report() {
        let r = Recorder::new(true).into_report(SystemTime::UNIX_EPOCH);
        assert_eq!((r.started, r.elapsed, r.conn_per_s()), (0, Duration::ZERO, 0.0));
        assert!(r.per_worker.is_empty());
    }

    #[test]
    fn phases_and_keep_alive_attribution() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut rec = Recorder::new(true);
        rec.add_scheduled(2);
        rec.start(t0);
        rec.late();
        // Connection 1: intended t0, started at +100us, first byte +400us,
        // done +1000us, from worker 1; then two keep-alive requests, one
        // answered by worker 2.
        let first = rec.response(
            Some(b"1"),
            &RequestTimes {
                intended: t0,
                start: t0 + us(100),
                first_byte: t0 + us(400),
                done: t0 + us(1000),
                established: None,
                stamps: None,
            },
        );
        for (w, at) in [(&b"1"[..], 1000), (b"2", 2000)] {
            let s = t0 + us(at);
            rec.response(
                Some(w),
                &RequestTimes {
                    intended: s,
                    start: s,
                    first_byte: s + us(50),
                    done: s + us(80),
                    established: None,
                    stamps: None,
                },
            );
        }
        rec.connection_ok(first, Some(us(30)), t0 + us(3000));
        // Connection 2: one response from worker 2, then a reset.
        rec.start(t0);
        rec.response(
            Some(b"2"),
            &RequestTimes {
                intended: t0,
                start: t0,
                first_byte: t0 + us(10),
                done: t0 + us(20),
                established: None,
                stamps: None,
            },
        );
        rec.connection_failed(ErrorClass::Reset, Some(us(7)), t0 + us(4000));
        let r = rec.into_report(SystemTime::UNIX_EPOCH);
        assert_eq!((r.scheduled, r.started, r.late, r.dropped), (2, 2, 1, 0));
        assert_eq!((r.completed, r.errors.reset, r.requests), (1, 1, 4));
        let (w1, w2) = (r.worker("1").unwrap(), r.worker("2").unwrap());
        assert_eq!((w1.completed, w1.requests), (1, 2));
        assert_eq!((w2.completed, w2.requests), (0, 2));
        assert_eq!(r.phases.connect.len(), 2, "every established connection");
        assert_eq!(w1.phases.connect.len(), 1);
        assert_eq!(w2.phases.connect.len(), 0, "connect goes to the first worker");
        assert_eq!(r.phases.total.len(), 4);
        assert_eq!(r.latency.len(), 4);
        // The first request: corrected 1000, uncorrected 900, ttfb 300.
        assert_eq!(w1.phases.total.max(), w1.phases.total.highest_equivalent(1000));
        assert_eq!(
            w1.phases.total_uncorrected.max(),
            w1.phases.total_uncorrected.highest_equivalent(900)
        );
        assert_eq!(w1.phases.ttfb.max(), 300);
        assert_eq!(w1.phases.ttfb.min(), 50);
        assert_eq!(w2.phases.total.min(), 20);
        assert_eq!(w1.latency.len(), w1.phases.total.len());
        assert!((r.req_per_s() - 4.0 / 0.004).abs() < 1e-6);
    }

    #[test]
    fn no_record_counts_but_keeps_histograms_empty() {
        let mut rec = Recorder::new(false);
        let now = Instant::now();
        for w in [&b"1"[..], b"2", b"1"] {
            rec.start(now);
            complete(&mut rec, Some(w), Duration::from_millis(3), now);
        }
        rec.start(now);
        rec.connection_failed(ErrorClass::Timeout, Some(Duration::from_millis(1)), now);
        let r = rec.into_report(SystemTime::UNIX_EPOCH);
        assert_eq!((r.completed, r.requests, r.errors.timeout), (3, 3, 1));
        assert_eq!(r.worker("1").map(|w| (w.completed, w.requests)), Some((2, 2)));
        assert!(r.phases.is_empty() && r.latency.is_empty());
        assert!(r.per_worker.iter().all(|w| w.phases.is_empty() && w.latency.is_empty()));
    }

    #[test]
    fn intervals_roll_and_flush_without_gaps() {
        let (tx, rx) = std::sync::mpsc::channel();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut rec = Recorder::new(true).with_intervals(1, t0, ms(100), tx);
        let req = |at: u64| RequestTimes {
            intended: t0 + ms(at) - ms(1),
            start: t0 + ms(at) - ms(1),
            first_byte: t0 + ms(at),
            done: t0 + ms(at),
            established: None,
            stamps: None,
        };
        rec.response(Some(b"a"), &req(10));
        rec.response(Some(b"a"), &req(50));
        rec.tick(t0 + ms(99));
        assert!(rx.try_recv().is_err(), "nothing ends before 100 ms");
        // Interval 1 empty, interval 2 gets one.
        rec.response(Some(b"a"), &req(250));
        rec.tick(t0 + ms(320));
        rec.flush_intervals(t0 + ms(430), 4);
        let got: Vec<IntervalHist> = rx.try_iter().collect();
        let summary: Vec<(u64, u64, u64, u64)> = got
            .iter()
            .map(|h| {
                (
                    h.index,
                    h.start.as_millis() as u64,
                    h.length.as_millis() as u64,
                    h.total.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, 0, 100, 2),
                (1, 100, 100, 0),
                (2, 200, 100, 1),
                (3, 300, 100, 0),
                (4, 400, 30, 0)
            ]
        );
        assert!(got.iter().all(|h| h.thread == 1));
        assert_eq!(got[0].total.max(), 1000);
    }

    /// Sums the interval counts per worker id: `(connections, requests)`.
    fn interval_sums(got: &[IntervalHist]) -> std::collections::BTreeMap<String, (u64, u64)> {
        let mut sums = std::collections::BTreeMap::new();
        for h in got {
            for w in &h.workers {
                assert!(w.connections + w.requests > 0, "zero entry sent: {h:?}");
                let s = sums.entry(w.id.clone()).or_insert((0, 0));
                s.0 += w.connections;
                s.1 += w.requests;
            }
            let mut ids: Vec<&str> = h.workers.iter().map(|w| w.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), h.workers.len(), "one entry per worker: {h:?}");
        }
        sums
    }

    #[test]
    fn interval_worker_counts_sum_to_the_report() {
        for record in [true, false] {
            let (tx, rx) = std::sync::mpsc::channel();
            let t0 = Instant::now();
            let ms = Duration::from_millis;
            let mut rec = Recorder::new(record).with_intervals(0, t0, ms(100), tx);
            let req = |at: u64| RequestTimes {
                intended: t0 + ms(at) - ms(1),
                start: t0 + ms(at) - ms(1),
                first_byte: t0 + ms(at),
                done: t0 + ms(at),
                established: None,
                stamps: None,
            };
            // Interval 0: a keep-alive connection of three responses, first
            // from "a" (counts for "a"), then "b", "a"; and a one-request
            // connection from "b".
            let first = rec.response(Some(b"a"), &req(10));
            rec.response(Some(b"b"), &req(20));
            rec.response(Some(b"a"), &req(30));
            rec.connection_ok(first, None, t0 + ms(31));
            complete(&mut rec, Some(b"b"), ms(1), t0 + ms(40));
            // A connection whose responses fall in interval 0 but which
            // completes in interval 1 (no tick in between): the connection
            // counts in interval 1.
            let first = rec.response(Some(b"b"), &req(90));
            rec.connection_ok(first, None, t0 + ms(110));
            rec.tick(t0 + ms(150));
            // Interval 2 nothing; interval 3: "?" and "a"; a response from
            // "a" whose connection then fails (requests only).
            rec.tick(t0 + ms(250));
            complete(&mut rec, None, ms(1), t0 + ms(310));
            complete(&mut rec, Some(b"a"), ms(1), t0 + ms(320));
            rec.response(Some(b"a"), &req(330));
            rec.connection_failed(ErrorClass::Reset, None, t0 + ms(331));
            rec.tick(t0 + ms(399));
            // After the last tick, before the run ends (at 430 ms, in interval
            // 4): flushed with the last interval.
            let first = rec.response(Some(b"b"), &req(410));
            rec.response(Some(b"b"), &req(415));
            rec.connection_ok(first, None, t0 + ms(420));
            rec.flush_intervals(t0 + ms(430), 4);

            let got: Vec<IntervalHist> = rx.try_iter().collect();
            assert_eq!(got.iter().map(|h| h.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
            let by = |h: &IntervalHist| {
                let mut v: Vec<(String, u64, u64)> = h
                    .workers
                    .iter()
                    .map(|w| (w.id.clone(), w.connections, w.requests))
                    .collect();
                v.sort();
                v
            };
            let s = |id: &str, c: u64, r: u64| (id.to_string(), c, r);
            assert_eq!(by(&got[0]), [s("a", 1, 2), s("b", 1, 3)], "{:?}", got[0]);
            assert_eq!(by(&got[1]), [s("b", 1, 0)], "{:?}", got[1]);
            assert_eq!(by(&got[2]), []);
            assert_eq!(by(&got[3]), [s("?", 1, 1), s("a", 1, 2)], "{:?}", got[3]);
            assert_eq!(by(&got[4]), [s("b", 1, 2)], "{:?}", got[4]);
            let hist_len: u64 = got.iter().map(|h| h.total.len()).sum();
            assert_eq!(hist_len, if record { 10 } else { 0 });

            let r = rec.into_report(SystemTime::UNIX_EPOCH);
            assert_eq!((r.completed, r.requests), (6, 10), "{r:?}");
            let sums = interval_sums(&got);
            assert_eq!(sums.len(), r.per_worker.len(), "{sums:?}");
            for w in &r.per_worker {
                assert_eq!(sums.get(&w.id), Some(&(w.completed, w.requests)), "{w:?}");
            }
        }
    }

    #[test]
    fn interval_worker_counts_cover_workers_seen_before_intervals() {
        // A worker known before `with_intervals` still has its slot.
        let (tx, rx) = std::sync::mpsc::channel();
        let t0 = Instant::now();
        let mut rec = Recorder::new(true);
        complete(&mut rec, Some(b"early"), Duration::from_micros(5), t0);
        let mut rec = rec.with_intervals(0, t0, Duration::from_millis(10), tx);
        complete(&mut rec, Some(b"early"), Duration::from_micros(5), t0);
        complete(&mut rec, Some(b"late"), Duration::from_micros(5), t0);
        rec.flush_intervals(t0 + Duration::from_millis(5), 0);
        let got: Vec<IntervalHist> = rx.try_iter().collect();
        assert_eq!(got.len(), 1);
        let mut ws = got[0].workers.clone();
        ws.sort_by(|a, b| a.id.cmp(&b.id));
        let want = |id: &str| IntervalWorker {
            id: id.into(),
            connections: 1,
            requests: 1,
        };
        assert_eq!(ws, [want("early"), want("late")]);
        assert!(format!("{:?}", got[0]).contains("workers: [IntervalWorker"));
    }
}
