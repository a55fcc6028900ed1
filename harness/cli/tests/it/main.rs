//! The `harness` command's tests: one binary, one module per area, shared
//! helpers in [`common`].
//!
//! They drive the binary (`CARGO_BIN_EXE_harness`), never fork a fleet in
//! this multi-threaded test process, and read what the runs wrote. Tests
//! that read a distribution or a timing take [`common::serial`], so they do
//! not run beside each other on two cores; a test that needs a capability
//! (root, io_uring) skips only off CI ([`common::needs`]).

#![deny(unsafe_code)]

mod common;

mod bench_script;
mod chaos;
mod doctor;
mod external;
mod faults;
mod fleet;
mod interrupt;
mod kernel;
mod kernel_attribution;
mod measure;
mod models_cbpf_uring;
mod models_dispatch_mutex;
mod models_ebpf;
mod report;
mod scenario_props;
mod servers;
mod sweep;
mod workloads;
