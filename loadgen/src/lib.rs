//! `loadgen`: an HTTP/1.1 load generator (closed or open loop) that
//! attributes every response to the worker process that served it.
//!
//! The harness measures how Linux spreads TCP connections over the workers of
//! a server under different accept models. General-purpose tools (wrk, ab)
//! report throughput but not *who* served each request, and they spend CPU
//! the server needs on a 2-core machine. This crate opens one connection per
//! request (so every request exercises accept), reads the worker id each
//! response carries (by default the `x-worker` header; another header or the
//! body's first line with [`Config::attribution`]), and reports per-worker
//! counts and latency histograms by phase,
//! with the conservation invariants `scheduled == started + dropped` and
//! `started == completed + errors` checked in tests. The open loop
//! ([`OpenLoop`]) starts connections on a schedule and measures latency from
//! the intended start, so server stalls are not hidden (coordinated
//! omission); keep-alive ([`Config::requests_per_conn`]) sends several
//! requests per connection.
//!
//! Only loopback targets are accepted ([`Config::validate`]) unless
//! [`Config::allow_remote`] is set.
//!
//! ```no_run
//! use loadgen::{Config, Stop};
//! let cfg = Config::new("127.0.0.1:8080".parse().unwrap(), 64, Stop::Connections(10_000));
//! let report = loadgen::run(&cfg)?;
//! println!("{} conn/s, {} workers", report.conn_per_s(), report.worker_counts().len());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Open loop, 5000 connections per second with Poisson arrivals for 30 s,
//! ten keep-alive requests per connection, an interval histogram per second:
//!
//! ```no_run
//! use std::time::Duration;
//! use loadgen::{Arrivals, Config, Intervals, OpenLoop, Stop};
//! let open = OpenLoop { arrivals: Arrivals::Poisson, ..OpenLoop::new(5000.0) };
//! let mut cfg = Config::new_open("127.0.0.1:8080".parse().unwrap(), open, Stop::Duration(Duration::from_secs(30)));
//! cfg.requests_per_conn = 10;
//! let (tx, rx) = std::sync::mpsc::channel();
//! cfg.intervals = Some(Intervals { every: Duration::from_secs(1), sink: tx });
//! let report = loadgen::run(&cfg)?;
//! println!("{} late, {} dropped, p99 {} us (uncorrected {} us)", report.late, report.dropped,
//!     report.phases.total.value_at_quantile(0.99), report.phases.total_uncorrected.value_at_quantile(0.99));
//! for h in rx.try_iter() { /* one per thread per second: h.index, h.start, h.length, h.total, h.workers */ }
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(unsafe_code)]

pub mod config;
pub mod engine;
pub mod http;
pub mod report;
pub mod schedule;

pub use config::{parse_duration, parse_sources, Arrivals, Config, Intervals, OpenLoop, Stop};
pub use engine::run;
pub use http::{Attribution, Stamps};
pub use report::{
    ErrorClass, ErrorCounts, IntervalHist, IntervalWorker, Phases, Recorder, Report, RequestTimes, Traced, WorkerReport,
};
