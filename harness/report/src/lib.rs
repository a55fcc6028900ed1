//! `report`: charts and reports of a run or a sweep, drawn from its saved
//! files alone.
//!
//! Why it exists: a table of per-worker counts says how uneven one run was;
//! a sweep's question (how the spread changes with load, which model is
//! fairest, what the herd costs in the tail) is answered by pictures and a
//! report a researcher can hand on. This crate depends on `records` only,
//! so the compiler enforces that everything drawn comes from the files: a
//! chart can be redrawn, or drawn on another machine, without rerunning
//! anything. [`plot`] has one module per chart; [`document`] writes
//! `REPORT.md` and a self-contained `report.html`.

#![deny(unsafe_code)]

pub mod document;
pub mod plot;

pub use document::{write, write_until};
pub use plot::{draw_all, draw_all_until, Chart, Drawn};
