//! Sealed frames over UDP, server side (issue 10; the protocol is
//! `proto/FRAMES.md`, its core `flotta_proto::frame`):
//!
//! - [`keyring`]: frame keys (made, rotated, revoked) and the bounded cache
//!   of derived contexts with their downlink counter reservations;
//! - [`counter`]: the downlink `CounterStore` over the store;
//! - [`items`]: an uplink plaintext decoded and checked;
//! - [`reassembly`]: records reassembled from fragments (pure);
//! - [`answer`]: the answer's plaintext (ack, configuration, rekey);
//! - [`answers`]: sealed answers kept for duplicates;
//! - [`ingest`]: one datagram in, at most one sealed answer out;
//! - [`rate`]: per-source budget of failed datagrams;
//! - [`udp`]: the listener;
//! - [`error`](FramesError): errors and drop reasons.
//!
//! Invariants: nothing is acknowledged before the frame's transaction is
//! committed; no downlink counter is ever handed out twice (reserved in
//! the store before use); nothing is sent in answer to a datagram that does
//! not authenticate, and an answer to a duplicate is never longer than it
//! and is bytes sealed before (replays spend no downlink counters); an
//! epoch is rotated well before its counters run out.

pub mod answer;
pub mod answers;
pub mod counter;
mod error;
pub mod ingest;
pub mod items;
pub mod keyring;
mod link_usage;
pub mod rate;
pub mod reassembly;
pub mod udp;
pub mod withheld;

use std::time::Duration;

pub use error::{FrameDrop, FramesError};
pub use ingest::{Answered, Carrier, FrameIngest, FrameResult};
pub use keyring::FrameKeyring;

use reassembly::FragmentLimits;

/// What the frame service is configured with (see [`crate::config::Config::frame_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSettings {
    /// Longest sealed answer (`udp_answer_bytes`).
    pub answer_bytes: usize,
    /// Reassembly bounds.
    pub limits: FragmentLimits,
    /// Age after which a context gets a new epoch.
    pub rotation: Duration,
    /// Key ids whose contexts are cached.
    pub cache_entries: usize,
    /// Bytes of sealed answers kept for duplicates.
    pub answer_cache_bytes: usize,
    /// Heartbeat period of devices nobody configured (their configuration).
    pub default_heartbeat_period_seconds: u64,
}
