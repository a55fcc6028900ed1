//! `records`: the on-disk contract of the harness.
//!
//! Why it exists: everything the harness measures ends as files (a run's
//! `workers.csv`, `summary.csv`, `timeseries.csv`, `latency.hlog`,
//! `histograms.hlog`, `meta.json`; a sweep's `runs.csv`, `aggregate.csv`,
//! ...), and everything drawn or reported is read back from those files
//! alone. This crate is that contract: the file [`names`], the row types
//! ([`rows`], [`timeseries`], Serialize and Deserialize by column name),
//! how each format is written and read ([`csv`], [`hlog`], [`meta`],
//! [`table`], atomically: [`files`]), the statistics computed from them
//! ([`fairness`], [`stats`], seeded by [`rng`]), the units the files and
//! flags use ([`units`]) and the seed article's own figures ([`seed`]).
//! It reads no clock but the wall clock for stamps, forks nothing and makes
//! no syscall of its own beyond file I/O, so both the runner and the report
//! crate depend on it, and the report crate on nothing else.

#![deny(unsafe_code)]

pub mod csv;
pub mod fairness;
pub mod files;
pub mod hlog;
pub mod meta;
pub mod names;
pub mod rng;
pub mod rows;
pub mod seed;
pub mod stats;
pub mod table;
pub mod text;
pub mod timeseries;
pub mod units;

pub use files::{check_writable, remove_temporaries, write_atomic, write_atomic_group, AtomicFile};
pub use meta::Meta;
pub use rows::{round, SummaryRow, WorkerRow};
pub use stats::{Estimate, Quantiles};
pub use table::Table;
