//! The flotta device agent as a library: every piece of logic lives here so that
//! it can be tested with injected clocks and I/O; `main.rs` only wires it up.
#![forbid(unsafe_code)]

pub mod clock;
pub mod queue;
pub mod selftest;
