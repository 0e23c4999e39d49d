//! A device's heartbeat history for the charts: battery and queue depth
//! samples in a time range, from its heartbeat records (and the window
//! summaries sealed frames fold heartbeats into), read oldest first in
//! pages and bounded.

use flotta_proto::payload::Payload;
use flotta_proto::record::RecordClass;

use super::charts::Sample;
use crate::device_id::DeviceId;
use crate::store::{Store, StoreError};

/// Records read at most for one chart request.
pub const MAX_SCANNED: usize = 200_000;
const PAGE: usize = 5_000;

/// Battery percent and queued records over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Battery charge, percent.
    pub battery: Vec<Sample>,
    /// Records waiting in the device's queue.
    pub queue: Vec<Sample>,
    /// Records dropped by the queue (per class, summed; since the agent started).
    pub dropped: Vec<Sample>,
    /// Seconds since boot.
    pub uptime: Vec<Sample>,
}

/// The samples of `id` with a device time in `[from_ms, to_ms)`.
pub fn history(
    store: &dyn Store,
    id: &DeviceId,
    from_ms: u64,
    to_ms: u64,
) -> Result<History, StoreError> {
    let mut h = History::default();
    let mut after = None;
    let mut scanned = 0;
    while scanned < MAX_SCANNED {
        let page = store.records(id, after, PAGE)?;
        scanned += page.len();
        for r in &page {
            let at = r.record.at_ms;
            if r.record.class != RecordClass::Heartbeat || at < from_ms || at >= to_ms {
                continue;
            }
            let hb = match Payload::decode(&r.record.payload) {
                Ok(Payload::Heartbeat(hb)) => hb,
                Ok(Payload::Summary(s)) => {
                    for b in [s.battery_min_percent, s.battery_max_percent].into_iter().flatten() {
                        h.battery.push((s.first_at_ms.max(from_ms), f64::from(b)));
                    }
                    s.last
                }
                _ => continue,
            };
            if let Some(b) = hb.battery_percent {
                h.battery.push((at, f64::from(b)));
            }
            h.queue.push((at, hb.queue_records as f64));
            h.dropped
                .push((at, hb.dropped_records.iter().sum::<u64>() as f64));
            h.uptime.push((at, hb.uptime_seconds as f64));
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.record.seq),
            _ => break,
        }
    }
    Ok(h)
}
