//! Heartbeat history of a device for charts ([`Store::heartbeat_history`]):
//! battery, queue depth, drops and uptime over a range of device time.
//!
//! Both backends read the device's heartbeat-class records (class 0: batch
//! `Payload::Heartbeat` records and `Payload::Summary` records of frame
//! windows) with `at_ms` in `[from_ms, to_ms)`, ordered by `(at_ms, seq)`,
//! at most `limit` rows, and decode them here ([`decode_sample`], one pure
//! function for both). A summary becomes one sample at the summary's
//! record time with its last heartbeat's values and its battery min/max. A
//! payload that does not decode (or is not a heartbeat) is skipped and
//! counted in [`HeartbeatHistory::undecodable`], never an error.
//!
//! **Index.** The range is served by a partial index on
//! `records(device_id, at_ms, seq) WHERE class = 0` (SQLite migration 11,
//! PostgreSQL migration 6). Without it a range read walks every record of
//! the device by primary key `(device_id, seq)` and sorts. Measured on
//! SQLite (`history_tests::range_read_cost`: a device with 30 days of
//! one-a-minute heartbeats, 43 200, and 10 800 log lines, beside 20 other
//! devices): an hour 0.11 ms with the index, 3.4 ms without; a day 2.3 ms
//! against 5.5 ms; the whole month ~70 ms either way (decoding dominates).
//! Without the index every read costs what the device *holds*, so it grows
//! with `record_retention_days` (and on PostgreSQL with heap fetches of
//! every row); with it a read costs what it returns. The price: one index
//! entry (~30 bytes) per heartbeat written and deleted. Storing windows of
//! 60 heartbeats did not measurably slow down (20 windows: 62 ms with the
//! index, 77 ms without, noise: the commit dominates), but heartbeat rows
//! take roughly a third more space. The console's common read is a short
//! range, often and for many devices, so the index was kept.
//!
//! The console folds samples into at most N time buckets for its charts
//! (`console::charts::downsample`), so a month of minutes is not drawn
//! point by point.

use flotta_proto::payload::{DeviceStatus, Payload};
use serde::Serialize;

#[cfg(doc)]
use super::Store;

/// One point of a device's heartbeat history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatSample {
    /// Device time of the record, ms since the Unix epoch.
    pub at_ms: u64,
    /// The record's sequence number.
    pub seq: u64,
    /// Heartbeats this sample stands for: 1, or a summary's count.
    pub heartbeats: u32,
    /// Battery charge (the last heartbeat's), in percent.
    pub battery_percent: Option<u8>,
    /// Lowest battery charge among the heartbeats (a summary's minimum).
    pub battery_min_percent: Option<u8>,
    /// Highest battery charge among the heartbeats (a summary's maximum).
    pub battery_max_percent: Option<u8>,
    /// Records waiting in the device's queue.
    pub queue_records: u64,
    /// Bytes of the device's queue.
    pub queue_bytes: u64,
    /// Records the queue dropped since the agent started, all classes.
    pub dropped_records: u64,
    /// Seconds since the device booted.
    pub uptime_seconds: u64,
    /// Up or degraded (the last heartbeat's).
    pub status: DeviceStatus,
}

/// What [`Store::heartbeat_history`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeartbeatHistory {
    /// Samples, oldest first (by device time, then seq).
    pub samples: Vec<HeartbeatSample>,
    /// Rows skipped because their payload did not decode as a heartbeat.
    pub undecodable: usize,
    /// The read stopped at its limit: later rows of the range were not
    /// read (ask again from the last sample's `at_ms`).
    pub truncated: bool,
}

/// A heartbeat-class row as both backends read it: `(seq, at_ms, payload)`.
pub(crate) type HistoryRow = (u64, u64, Vec<u8>);

/// The sample a heartbeat-class record stands for; `None` when its payload
/// is not a heartbeat or a summary (or does not decode).
pub fn decode_sample(seq: u64, at_ms: u64, payload: &[u8]) -> Option<HeartbeatSample> {
    let (hb, heartbeats, min, max) = match Payload::decode(payload).ok()? {
        Payload::Heartbeat(hb) => {
            let b = hb.battery_percent;
            (hb, 1, b, b)
        }
        Payload::Summary(s) => (
            s.last,
            s.heartbeats,
            s.battery_min_percent,
            s.battery_max_percent,
        ),
        Payload::Log(_) | Payload::Event(_) => return None,
    };
    Some(HeartbeatSample {
        at_ms,
        seq,
        heartbeats,
        battery_percent: hb.battery_percent,
        battery_min_percent: min,
        battery_max_percent: max,
        queue_records: hb.queue_records,
        queue_bytes: hb.queue_bytes,
        dropped_records: hb
            .dropped_records
            .iter()
            .fold(0u64, |a, b| a.saturating_add(*b)),
        uptime_seconds: hb.uptime_seconds,
        status: hb.status,
    })
}

/// Decode rows (already ordered and bounded by `limit`) into a history.
pub(crate) fn collect(rows: Vec<HistoryRow>, limit: usize) -> HeartbeatHistory {
    let truncated = limit > 0 && rows.len() >= limit;
    let mut h = HeartbeatHistory {
        samples: Vec::with_capacity(rows.len()),
        undecodable: 0,
        truncated,
    };
    for (seq, at_ms, payload) in rows {
        match decode_sample(seq, at_ms, &payload) {
            Some(s) => h.samples.push(s),
            None => h.undecodable += 1,
        }
    }
    h
}
