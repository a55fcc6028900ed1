//! What a run measured, and how per-thread results are combined.
//!
//! Each engine thread records into its own `Recorder` (no sharing on the hot
//! path; workers are found by a linear scan over their id bytes, so a response
//! costs no allocation). At the end the recorders are merged into one
//! [`Report`], which keeps the conservation invariant
//! `started == completed + errors.total()` and
//! `Σ per_worker.completed == completed`.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency tracked, in microseconds (one hour). Larger values are clamped.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Worker id under which responses without an `x-worker` header are counted.
pub const UNKNOWN_WORKER: &str = "?";

/// An empty latency histogram: 1 us .. 1 h, 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("constant histogram bounds are valid")
}

fn record(h: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.clamp(1, LATENCY_MAX_US));
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
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Refused,
        ErrorClass::Reset,
        ErrorClass::Timeout,
        ErrorClass::AddrNotAvailable,
        ErrorClass::Malformed,
        ErrorClass::Other,
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
        e.raw_os_error()
            .map_or(ErrorClass::Other, ErrorClass::from_errno)
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
        };
        *slot += n;
    }

    fn merge(&mut self, other: &ErrorCounts) {
        for class in ErrorClass::ALL {
            self.add(class, other.get(class));
        }
    }
}

/// Responses served by one worker.
#[derive(Clone)]
pub struct WorkerReport {
    /// The `x-worker` header value, or [`UNKNOWN_WORKER`].
    pub id: String,
    pub completed: u64,
    /// Microseconds, connect start -> response complete.
    pub latency: Histogram<u64>,
}

impl fmt::Debug for WorkerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerReport")
            .field("id", &self.id)
            .field("completed", &self.completed)
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
    /// Connections with a full, well-formed response (any status code).
    pub completed: u64,
    pub errors: ErrorCounts,
    /// Microseconds, connect start -> response complete, over all workers.
    pub latency: Histogram<u64>,
    /// Sorted by id: numerically if every id (other than `?`) is a u64,
    /// lexicographically otherwise; `?` always last.
    pub per_worker: Vec<WorkerReport>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("elapsed", &self.elapsed)
            .field("started", &self.started)
            .field("completed", &self.completed)
            .field("errors", &self.errors)
            .field("latency_max_us", &self.latency.max())
            .field("per_worker", &self.per_worker)
            .finish()
    }
}

impl Report {
    /// Completed connections per second of elapsed time (0 if nothing ran).
    pub fn conn_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.completed as f64 / s
        } else {
            0.0
        }
    }

    /// Completed count per worker, in `per_worker` order (for [`crate::fairness`]).
    pub fn worker_counts(&self) -> Vec<u64> {
        self.per_worker.iter().map(|w| w.completed).collect()
    }

    /// The worker with this id, if it served anything.
    pub fn worker(&self, id: &str) -> Option<&WorkerReport> {
        self.per_worker.iter().find(|w| w.id == id)
    }
}

struct WorkerStats {
    id: Vec<u8>,
    completed: u64,
    latency: Histogram<u64>,
}

/// One thread's measurements; merged into a [`Report`] at the end.
pub(crate) struct Recorder {
    started: u64,
    completed: u64,
    errors: ErrorCounts,
    latency: Histogram<u64>,
    workers: Vec<WorkerStats>,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            started: 0,
            completed: 0,
            errors: ErrorCounts::default(),
            latency: new_latency_histogram(),
            workers: Vec::new(),
            first_start: None,
            last_end: None,
        }
    }

    /// A connection attempt begins.
    pub(crate) fn start(&mut self, now: Instant) {
        self.started += 1;
        self.first_start.get_or_insert(now);
    }

    /// A connection attempt failed.
    pub(crate) fn error(&mut self, class: ErrorClass, now: Instant) {
        self.errors.add(class, 1);
        self.end(now);
    }

    /// A connection delivered a full response from `worker` after `latency`.
    pub(crate) fn complete(&mut self, worker: Option<&[u8]>, latency: Duration, now: Instant) {
        self.completed += 1;
        record(&mut self.latency, latency);
        let id = worker.unwrap_or(UNKNOWN_WORKER.as_bytes());
        let idx = match self.workers.iter().position(|w| w.id == id) {
            Some(i) => i,
            None => {
                self.workers.push(WorkerStats {
                    id: id.to_vec(),
                    completed: 0,
                    latency: new_latency_histogram(),
                });
                self.workers.len() - 1
            }
        };
        let w = &mut self.workers[idx];
        w.completed += 1;
        record(&mut w.latency, latency);
        self.end(now);
    }

    fn end(&mut self, now: Instant) {
        match self.last_end {
            Some(t) if t >= now => {}
            _ => self.last_end = Some(now),
        }
    }

    pub(crate) fn merge(&mut self, other: Recorder) {
        self.started += other.started;
        self.completed += other.completed;
        self.errors.merge(&other.errors);
        add(&mut self.latency, &other.latency);
        for w in other.workers {
            match self.workers.iter_mut().find(|m| m.id == w.id) {
                Some(m) => {
                    m.completed += w.completed;
                    add(&mut m.latency, &w.latency);
                }
                None => self.workers.push(w),
            }
        }
        self.first_start = match (self.first_start, other.first_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = other.last_end {
            self.end(t);
        }
    }

    pub(crate) fn into_report(self) -> Report {
        let elapsed = match (self.first_start, self.last_end) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        let mut per_worker: Vec<WorkerReport> = self
            .workers
            .into_iter()
            .map(|w| WorkerReport {
                id: String::from_utf8_lossy(&w.id).into_owned(),
                completed: w.completed,
                latency: w.latency,
            })
            .collect();
        sort_workers(&mut per_worker);
        Report {
            elapsed,
            started: self.started,
            completed: self.completed,
            errors: self.errors,
            latency: self.latency,
            per_worker,
        }
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Both come from new_latency_histogram(), so the ranges always match.
    into.add(from).expect("latency histograms share bounds");
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

    #[test]
    fn merge_keeps_the_invariants() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for (i, w) in [&b"10"[..], b"2", b"10"].into_iter().enumerate() {
            a.start(t0);
            a.complete(Some(w), ms(1), t0 + ms(i as u64));
        }
        a.start(t0);
        a.error(ErrorClass::Refused, t0 + ms(5));
        b.start(t0 + ms(1));
        b.complete(None, ms(2), t0 + ms(20));
        b.start(t0 + ms(1));
        b.complete(Some(b"2"), ms(3), t0 + ms(7));
        b.start(t0 + ms(2));
        b.error(ErrorClass::Malformed, t0 + ms(8));
        a.merge(b);
        let r = a.into_report();
        assert_eq!(r.started, 7);
        assert_eq!(r.completed, 5);
        assert_eq!(r.errors.total(), 2);
        assert_eq!(r.started, r.completed + r.errors.total());
        assert_eq!(r.worker_counts().iter().sum::<u64>(), r.completed);
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
        let mut rec = Recorder::new();
        let now = Instant::now();
        for w in [&b"b"[..], b"10", b"a", b"9"] {
            rec.start(now);
            rec.complete(Some(w), Duration::from_micros(5), now);
        }
        assert_eq!(ids(&rec.into_report()), ["10", "9", "a", "b"]);
    }

    #[test]
    fn latency_is_clamped_into_range() {
        let mut rec = Recorder::new();
        let now = Instant::now();
        rec.start(now);
        rec.complete(Some(b"1"), Duration::ZERO, now);
        rec.start(now);
        rec.complete(Some(b"1"), Duration::from_secs(100_000), now);
        let r = rec.into_report();
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
                "other"
            ]
        );
        assert_eq!(
            ErrorClass::from_errno(libc::ECONNREFUSED),
            ErrorClass::Refused
        );
        assert_eq!(ErrorClass::from_errno(libc::ECONNRESET), ErrorClass::Reset);
        assert_eq!(ErrorClass::from_errno(libc::EPIPE), ErrorClass::Reset);
        assert_eq!(
            ErrorClass::from_errno(libc::EADDRNOTAVAIL),
            ErrorClass::AddrNotAvailable
        );
        assert_eq!(ErrorClass::from_errno(libc::EMFILE), ErrorClass::Other);
        assert_eq!(
            ErrorClass::from_io(&io::Error::other("x")),
            ErrorClass::Other
        );
        let mut e = ErrorCounts::default();
        e.add(ErrorClass::Timeout, 3);
        e.add(ErrorClass::Other, 1);
        assert_eq!((e.timeout, e.total()), (3, 4));
    }

    #[test]
    fn empty_report() {
        let r = Recorder::new().into_report();
        assert_eq!(
            (r.started, r.elapsed, r.conn_per_s()),
            (0, Duration::ZERO, 0.0)
        );
        assert!(r.per_worker.is_empty());
    }
}
