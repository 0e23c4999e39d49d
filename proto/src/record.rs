//! Record classes shared by the agent's queue and the server's batch route.
//!
//! The class decides eviction order on the device when its queue is full:
//! heartbeats are dropped (coalesced) first, then logs, then events.

use serde::{Deserialize, Serialize};

/// What a queued record is. Order matters: lower values are evicted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum RecordClass {
    /// Periodic status; only the newest one really matters.
    Heartbeat = 0,
    /// Workload and agent log lines.
    Log = 1,
    /// State changes and alarms; the last thing the agent gives up.
    Event = 2,
}

impl RecordClass {
    /// All classes, in eviction order (first evicted first).
    pub const ALL: [RecordClass; 3] =
        [RecordClass::Heartbeat, RecordClass::Log, RecordClass::Event];

    /// Index into per-class counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}
