//! A device's heartbeat history for the charts: battery, queue depth,
//! drops and uptime over a time range, from `Store::heartbeat_history` (heartbeat
//! records and the window summaries sealed frames fold heartbeats into,
//! read by device time through their index), as chart samples.

use super::charts::Sample;
use crate::device_id::DeviceId;
use crate::store::{Store, StoreError};

/// Samples read per store call (a month of one-a-minute heartbeats is
/// 43 200), and calls at most: a device beating every 10 s for a month
/// (259 200) still fits.
pub const PAGE_SAMPLES: usize = 50_000;
const MAX_PAGES: usize = 6;

/// Battery percent, queued and dropped records over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Battery charge, percent (a summary gives its lowest and highest).
    pub battery: Vec<Sample>,
    /// Records waiting in the device's queue.
    pub queue: Vec<Sample>,
    /// Records dropped by the queue (all classes, since the agent started).
    pub dropped: Vec<Sample>,
    /// Hours since the device booted (a drop to zero is a reboot).
    pub uptime: Vec<Sample>,
    /// The range held more than [`MAX_PAGES`] × [`PAGE_SAMPLES`]: the newest are missing.
    pub truncated: bool,
}

/// The samples of `id` with a device time in `[from_ms, to_ms)`.
pub fn history(
    store: &dyn Store,
    id: &DeviceId,
    from_ms: u64,
    to_ms: u64,
) -> Result<History, StoreError> {
    let mut h = History::default();
    let mut samples = Vec::new();
    let mut from = from_ms;
    let mut last: Option<(u64, u64)> = None;
    for page in 0..MAX_PAGES {
        let read = store.heartbeat_history(id, from, to_ms, PAGE_SAMPLES)?;
        // The next page starts at the last sample's time: drop what was
        // already taken at that instant.
        samples.extend(
            read.samples
                .into_iter()
                .filter(|s| last.is_none_or(|l| (s.at_ms, s.seq) > l)),
        );
        match samples.last() {
            Some(s) if read.truncated => {
                last = Some((s.at_ms, s.seq));
                from = s.at_ms;
                h.truncated = page + 1 == MAX_PAGES;
            }
            _ => break,
        }
    }
    for s in &samples {
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
        h.uptime.push((at, s.uptime_seconds as f64 / 3600.0));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload};
    use flotta_proto::record::RecordClass;

    use super::*;
    use crate::device_id::Namespace;
    use crate::store::{Contact, NewRecord, SqliteStore};

    #[test]
    fn more_than_a_page_is_read_in_pages_without_gaps_or_repeats() {
        let s = SqliteStore::in_memory().unwrap();
        let id = DeviceId::parse("busy").unwrap();
        let t0 = 1_800_000_000_000;
        s.enrol(&id, &Namespace::parse("default").unwrap(), None, true, t0)
            .unwrap();
        let n = PAGE_SAMPLES as u64 + 7_000;
        // Two heartbeats per instant: a page boundary falls inside a pair.
        let records: Vec<NewRecord> = (0..n)
            .map(|i| NewRecord {
                seq: i + 1,
                at_ms: t0 + (i / 2) * 10_000,
                class: RecordClass::Heartbeat,
                payload: Payload::Heartbeat(Heartbeat {
                    status: DeviceStatus::Up,
                    agent_version: "t".into(),
                    uptime_seconds: i,
                    queue_records: i,
                    queue_bytes: 0,
                    dropped_records: [0, 0, 0],
                    damaged_bytes: 0,
                    battery_percent: None,
                    workloads: vec![],
                })
                .encode(),
            })
            .collect();
        for chunk in records.chunks(5_000) {
            s.ingest_batch(&id, chunk, None, Contact::at(t0)).unwrap();
        }
        let h = history(&s, &id, t0, t0 + n * 10_000).unwrap();
        assert!(!h.truncated);
        let queue: Vec<u64> = h.queue.iter().map(|(_, v)| *v as u64).collect();
        assert_eq!(
            queue,
            (0..n).collect::<Vec<_>>(),
            "every sample once, in order"
        );
        assert!(h.battery.is_empty());
    }
}
