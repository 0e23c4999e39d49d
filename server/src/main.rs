//! `flotta-server` command line (placeholder until the CLI lands).
#![forbid(unsafe_code)]

fn main() {}
