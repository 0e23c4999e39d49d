//! Counters the queue exposes to heartbeats and benchmarks.

/// A snapshot of the queue's counters. "Since open" counters start at zero
/// each time the queue is opened (the heartbeat carries the agent's uptime, so
/// the server can tell a restart from a reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Unacknowledged data records.
    pub records: u64,
    /// Bytes of all segment files.
    pub bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Records dropped by eviction since open, per class (index by `RecordClass::index`).
    pub dropped: [u64; 3],
    /// Bytes found damaged (torn or corrupted) since open.
    pub damaged_bytes: u64,
    /// Separate damaged spans found since open.
    pub damaged_spans: u64,
    /// fsync calls (files and directories) since open.
    pub fsyncs: u64,
    /// Bytes this queue wrote to segment files since open (frames, compactions).
    pub bytes_written: u64,
    /// Payload bytes appended since open.
    pub payload_bytes: u64,
}
