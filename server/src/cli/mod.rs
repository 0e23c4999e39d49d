//! The kubectl-style admin commands (`apply`, `get`, `describe`, `delete`):
//! a client for the admin listener's object API and the output formats
//! (tables, YAML, JSON). The binary only parses arguments and prints.

mod assigned;
mod client;
mod output;

pub use client::{AdminClient, Applied, CliError};
pub use output::{
    OutputFormat, describe, describe_events, format_list, format_object, human_age, table,
};
