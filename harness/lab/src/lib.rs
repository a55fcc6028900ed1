//! `lab`: the runs of the accept-distribution harness.
//!
//! Why it exists: a measurement is more than a fleet and a load generator.
//! It is a run spec whose every parameter is checked before anything starts
//! ([`params`], [`spec::RunSpec`]), a subject (the harness's own fleet, a
//! real server it starts, or a server at an address) behind one runner
//! ([`run`], [`subject`], [`running`]), a reconciliation of what the load generator
//! completed with what the workers counted ([`conservation`]), the rows it
//! ends in ([`rows`]), and grids of such runs from scenario files
//! ([`scenario`], [`sweep`]), including the experiments the README reports
//! ([`experiment`]: the seed's table, real servers beside their models).
//! The real servers themselves are in [`servers`]; what is read off the
//! machine (meta.json, the sysctls a run sets) in [`machine`]; what the
//! machine lets the harness do, and the refusal of a run that needs what it
//! lacks, in [`doctor`]; the kernel's count of who accepted in [`accepts`]; SIGINT and SIGTERM in [`interrupt`]. Files are written through `records`; nothing
//! here draws: the `report` crate reads the files afterwards.

#![deny(unsafe_code)]

pub mod accepts;
pub mod account;
pub mod connections;
pub mod conservation;
pub mod doctor;
pub mod experiment;
pub mod interrupt;
pub mod kernel;
pub mod load;
pub mod machine;
pub mod netns;
pub mod output;
pub mod params;
pub mod preflight;
pub mod queue;
pub mod rows;
pub mod run;
pub mod running;
pub mod scenario;
pub mod servers;
pub mod spec;
pub mod subject;
pub mod sweep;

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
