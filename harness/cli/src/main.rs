//! `harness`: the command line and nothing else.
//!
//! Why it exists: every measurement, file and chart is made by the library
//! crates (`lab` runs, `report` draws, `records` is the on-disk contract);
//! this binary parses the command line into their calls, prints what they
//! return, and maps every outcome to an exit code (0 success; 1 a run or its
//! conservation check failed; 2 a usage error, before anything starts; 130
//! and 143 a SIGINT or SIGTERM). The layering, bottom up:
//!
//! ```text
//!   sys        every libc call and unsafe block
//!   records    the on-disk contract: names, rows, CSV/hlog/meta, statistics
//!   loadgen    the load generator (sys, records)
//!   fleet      accept models, workers, counters, supervision (sys, records)
//!   lab        specs, parameters, subjects, the runner, conservation,
//!              scenarios, sweeps, real servers, experiments
//!              (sys, records, loadgen, fleet)
//!   report     charts and reports, from saved files only (records)
//!   harness    this binary (lab, report, records)
//! ```
//!
//! Data flows one way: scenario -> runs -> (fleet or server, loadgen) ->
//! records -> files -> charts -> report.

#![deny(unsafe_code)]

mod cli;
mod run_args;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
