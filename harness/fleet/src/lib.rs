//! `fleet`: worker fleets under the accept models.
//!
//! Why it exists: the question the harness asks is how the kernel (or a
//! dispatcher) spreads connections over workers, so the workers must be
//! ones whose every step is known and counted. This crate is the server
//! side and nothing else: one module per accept model ([`model`]), what a
//! worker does with a connection ([`worker`], and [`event_loop`] for a
//! worker with several open at once), the per-worker counters in shared
//! memory ([`counters`]), forking, supervising and tearing down a fleet
//! ([`supervise`]), what /proc says each worker listens on and has used
//! ([`introspect`]), faults injected into a running fleet ([`faults`]), and
//! the eBPF assembler the steering models' programs are written with
//! ([`ebpf`]).
//! It knows nothing of load, files or reports: the runner (crate `lab`)
//! starts a fleet, drives it with the load generator and records it.

#![deny(unsafe_code)]

pub mod counters;
pub mod ebpf;
pub mod event_loop;
pub mod faults;
pub mod introspect;
pub mod model;
pub mod supervise;
pub mod worker;

pub use faults::{Faults, Injector, Kill};
pub use model::{Model, ModelOpts, Steer};
pub use supervise::{Fleet, FleetKind, Teardown};
pub use worker::{Service, Stall, WorkerPlan};
