//! Wire types shared by the flotta agent and the flotta server.
//!
//! This crate is deliberately tiny and has no runtime dependencies beyond
//! `serde`, `postcard` and `miniz_oxide` (batch compression): the agent links
//! it into a binary for a 512 MiB ARMv6 board, so anything added here costs
//! bytes on every device.
#![forbid(unsafe_code)]

pub mod batch;
pub mod compress;
pub mod payload;
pub mod record;
