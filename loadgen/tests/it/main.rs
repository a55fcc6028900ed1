//! The load generator's tests: one binary, one module per area. Tests that
//! measure take [`common::serial`].

#![deny(unsafe_code)]

mod common;

mod hostile;
mod loopback;
mod parser_props;
