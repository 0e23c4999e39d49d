//! Rust types for Flotta's CRDs (work in progress).
#![forbid(unsafe_code)]
