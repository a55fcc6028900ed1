//! The accept-distribution harness: forks worker fleets under different
//! accept models, drives them with the built-in load generator, and records
//! how the kernel (or a dispatcher) spread the connections over the workers.
//!
//! Data flows one way: a run spec -> a fleet and the load -> counters and
//! histograms -> records -> CSV, JSON and a printed table.

#![deny(unsafe_code)]

pub mod cli;
pub mod conservation;
pub mod counters;
pub mod event_loop;
pub mod export;
pub mod external;
pub mod faults;
pub mod fleet;
pub mod interrupt;
pub mod introspect;
pub mod model;
pub mod plot;
pub mod record;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod subject;
pub mod sweep;

pub mod worker;

use std::fmt;

/// A mistake in what the user asked for: reported in one line, exit code 2,
/// before anything starts.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
