//! A device's heartbeat history for the charts: battery, queue depth and
//! drops over a time range, from `Store::heartbeat_history` (heartbeat
//! records and the window summaries sealed frames fold heartbeats into,
//! read by device time through their index), as chart samples.

use super::charts::Sample;
use crate::device_id::DeviceId;
use crate::store::{Store, StoreError};

/// Samples read at most for one page (a month of one-a-minute heartbeats
/// is 43 200).
pub const MAX_SAMPLES: usize = 50_000;

/// Battery percent, queued and dropped records over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Battery charge, percent (a summary gives its lowest and highest).
    pub battery: Vec<Sample>,
    /// Records waiting in the device's queue.
    pub queue: Vec<Sample>,
    /// Records dropped by the queue (all classes, since the agent started).
    pub dropped: Vec<Sample>,
    /// The range held more than [`MAX_SAMPLES`]: the newest are missing.
    pub truncated: bool,
}

/// The samples of `id` with a device time in `[from_ms, to_ms)`.
pub fn history(
    store: &dyn Store,
    id: &DeviceId,
    from_ms: u64,
    to_ms: u64,
) -> Result<History, StoreError> {
    let read = store.heartbeat_history(id, from_ms, to_ms, MAX_SAMPLES)?;
    let mut h = History {
        truncated: read.truncated,
        ..History::default()
    };
    for s in &read.samples {
        let at = s.at_ms;
        for b in [
            s.battery_min_percent,
            s.battery_percent,
            s.battery_max_percent,
        ]
        .into_iter()
        .flatten()
        {
            h.battery.push((at, f64::from(b)));
        }
        h.queue.push((at, s.queue_records as f64));
        h.dropped.push((at, s.dropped_records as f64));
    }
    Ok(h)
}
