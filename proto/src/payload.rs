//! Payloads of queued records: what a heartbeat, a log line or an event says.
//!
//! Encoded with postcard inside [`crate::batch::WireRecord::payload`] and inside
//! the agent's on-disk queue. Fields are only ever appended (postcard is not
//! self-describing), and every decoder treats the bytes as untrusted.

use serde::{Deserialize, Serialize};

/// Any record payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    /// Periodic device status.
    Heartbeat(Heartbeat),
    /// A log line from the agent or a workload.
    Log(LogLine),
    /// Something happened that an operator should see.
    Event(Event),
    /// The heartbeats of one upload window on a narrow link, folded into
    /// one record (travels as class heartbeat).
    Summary(WindowSummary),
}

/// The heartbeats of one upload window, folded: presence and trends without
/// carrying every heartbeat over a narrow link. Stored under the sequence
/// number of the last heartbeat it covers, so folding the same heartbeats
/// again is deduplicated like any record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Heartbeats folded in.
    pub heartbeats: u32,
    /// Sequence number of the first one.
    pub first_seq: u64,
    /// Device clock of the first one, milliseconds since the Unix epoch.
    pub first_at_ms: u64,
    /// Lowest battery charge seen, in percent.
    pub battery_min_percent: Option<u8>,
    /// Highest battery charge seen, in percent.
    pub battery_max_percent: Option<u8>,
    /// Times the device was degraded among them.
    pub degraded: u32,
    /// The last heartbeat, whole.
    pub last: Heartbeat,
}

/// Overall device health, as in Flotta's `heartbeat.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Everything runs.
    Up,
    /// Something is wrong (a workload crashed, the queue is dropping data, ...).
    Degraded,
}

/// State of one workload, as in Flotta's `workload-status.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadPhase {
    /// Being pulled or started.
    Deploying,
    /// Running.
    Running,
    /// Exited with an error.
    Crashed,
    /// Stopped on purpose.
    Stopped,
}

/// One workload's state in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadState {
    /// Workload name.
    pub name: String,
    /// Its phase.
    pub phase: WorkloadPhase,
}

/// A heartbeat: compact status plus the agent's own counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Up or degraded.
    pub status: DeviceStatus,
    /// Agent version.
    pub agent_version: String,
    /// Seconds since the device booted.
    pub uptime_seconds: u64,
    /// Records waiting in the on-disk queue.
    pub queue_records: u64,
    /// Bytes of the on-disk queue.
    pub queue_bytes: u64,
    /// Records dropped by queue eviction since the agent started, per class
    /// (index by [`crate::record::RecordClass::index`]).
    pub dropped_records: [u64; 3],
    /// Bytes found damaged on disk and skipped since the agent started.
    pub damaged_bytes: u64,
    /// Battery charge in percent, if the device has a battery.
    pub battery_percent: Option<u8>,
    /// Workload states.
    pub workloads: Vec<WorkloadState>,
}

/// Severity of a log line or event, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// Informational.
    Info,
    /// Something to look at.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// `info`, `warn` or `error`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Where it came from: `agent` or a workload name.
    pub source: String,
    /// Severity.
    pub level: Level,
    /// The text.
    pub message: String,
}

/// An event, as in Flotta's `event-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// One word naming the subject (`Enrolled`, `QueueEvicted`, `WorkloadCrashed`, ...).
    pub reason: String,
    /// What happened.
    pub message: String,
    /// Importance.
    pub level: Level,
}

impl Payload {
    /// Encode with postcard.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decode untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// The record class this payload travels as.
    pub fn class(&self) -> crate::record::RecordClass {
        use crate::record::RecordClass;
        match self {
            Payload::Heartbeat(_) | Payload::Summary(_) => RecordClass::Heartbeat,
            Payload::Log(_) => RecordClass::Log,
            Payload::Event(_) => RecordClass::Event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Payload::decode(&bytes);
        }

        #[test]
        fn heartbeat_roundtrips(up in any::<bool>(), uptime in any::<u64>(), q in any::<u64>(), batt in any::<Option<u8>>()) {
            let p = Payload::Heartbeat(Heartbeat {
                status: if up { DeviceStatus::Up } else { DeviceStatus::Degraded },
                agent_version: "0.1.0".into(),
                uptime_seconds: uptime,
                queue_records: q,
                queue_bytes: q / 2,
                dropped_records: [1, 2, 3],
                damaged_bytes: 0,
                battery_percent: batt,
                workloads: vec![WorkloadState { name: "w".into(), phase: WorkloadPhase::Running }],
            });
            prop_assert_eq!(Payload::decode(&p.encode()).unwrap(), p);
        }
    }
}
