//! `loadgen`: a closed-loop HTTP/1.1 load generator that attributes every
//! response to the worker process that served it.
//!
//! The harness measures how Linux spreads TCP connections over the workers of
//! a server under different accept models. General-purpose tools (wrk, ab)
//! report throughput but not *who* served each request, and they spend CPU
//! the server needs on a 2-core machine. This crate opens one connection per
//! request (so every request exercises accept), reads the `x-worker` response
//! header, and reports per-worker counts and latency histograms, with the
//! conservation invariant `started == completed + errors` checked in tests.
//!
//! Only loopback targets are accepted ([`Config::validate`]).
//!
//! ```no_run
//! use loadgen::{Config, Stop};
//! let cfg = Config::new("127.0.0.1:8080".parse().unwrap(), 64, Stop::Connections(10_000));
//! let report = loadgen::run(&cfg)?;
//! println!("{} conn/s, Jain {:.3}", report.conn_per_s(), loadgen::fairness::jain(&report.worker_counts()));
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(unsafe_code)]

pub mod config;
pub mod engine;
pub mod fairness;
pub mod http;
pub mod report;
#[allow(unsafe_code)] // the one place for libc calls; see its module doc
pub mod sys;

pub use config::{parse_duration, Config, Stop};
pub use engine::run;
pub use report::{ErrorClass, ErrorCounts, Report, WorkerReport};
