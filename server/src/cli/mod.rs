//! The kubectl-style admin commands (`apply`, `get`, `describe`, `delete`,
//! `decommission`, `logs`, `events`):
//! a client for the admin listener's object API and the output formats
//! (tables, YAML, JSON). The binary only parses arguments and prints.

mod access;
mod assigned;
mod audit;
mod client;
mod events;
mod logs;
mod output;
mod stream;

pub use access::{AdminAccess, AdminTls, TOKEN_ENV};
pub use audit::{format_audit, format_new_token};
pub use client::{AdminClient, Applied, CliError};
pub use events::{Lines, Shown, feed_query, format_event, format_events, format_log};
pub use logs::{format_logs, parse_duration_ms};
pub use output::{
    OutputFormat, describe, describe_events, format_list, format_object, human_age, table,
    table_with,
};
pub use stream::{Follow, SseEvent, SseParser};

/// The local user name (`$USER`, else `$LOGNAME`), the default actor recorded
/// by `decommission` and `delete edgedevice`. The admin listener does not
/// authenticate it.
pub fn local_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
