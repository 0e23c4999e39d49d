//! Frame-window tests against [`TestServer`] (the protocol as the server
//! speaks it, from the proto API) behind a [`FakeCarrier`] that loses,
//! duplicates, replays and forges datagrams: shared helpers here,
//! `delivery.rs` and `state.rs` hold the tests (the ones over real UDP are
//! in `window/tests.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use flotta_proto::payload::{Event, Level, LogLine, Payload};

use super::test_server::{DEVICE, FakeCarrier, TestServer, keys};
use super::*;
use crate::clock::ManualClock;
use crate::desired::Desired;
use crate::frame_keys;
use crate::queue::{DiskSpace, Durability, Queue, QueueConfig};

pub(crate) struct Plenty;
impl DiskSpace for Plenty {
    fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }
}

pub(crate) type TestQueue = Queue<ManualClock, Plenty>;

pub(crate) fn open_queue(dir: &Path) -> Mutex<TestQueue> {
    let clock = ManualClock::new(1_700_000_000_000);
    let (q, _) = Queue::open(&dir.join("queue"), QueueConfig::default(), clock, Plenty).unwrap();
    Mutex::new(q)
}

pub(crate) fn params(dir: &Path, tls_limit: Option<usize>) -> FrameWindowParams {
    FrameWindowParams {
        data_dir: dir.to_path_buf(),
        device_id: DEVICE.into(),
        tls_limit,
        round_bytes: 64 * 1024,
        policy: PackPolicy::default(),
    }
}

pub(crate) fn heartbeat(battery: u8) -> Payload {
    crate::heartbeat::build(
        &crate::queue::Stats::default(),
        60,
        Some(battery),
        Vec::new(),
    )
}

pub(crate) fn log(i: usize) -> Payload {
    Payload::Log(LogLine {
        source: "test".into(),
        level: Level::Info,
        message: format!("log line number {i:04}"),
    })
}

pub(crate) fn event(len: usize) -> Payload {
    Payload::Event(Event {
        reason: "Big".into(),
        message: "x".repeat(len),
        level: Level::Warn,
    })
}

/// Append `payloads`; returns their (seq, payload bytes).
pub(crate) fn push(q: &Mutex<TestQueue>, payloads: &[Payload]) -> Vec<(u64, Vec<u8>)> {
    let mut q = q.lock().unwrap();
    payloads
        .iter()
        .map(|p| {
            let bytes = p.encode();
            (
                q.append(p.class(), &bytes, Durability::Durable).unwrap(),
                bytes,
            )
        })
        .collect()
}

pub(crate) fn window(
    dir: &Path,
    q: &Mutex<TestQueue>,
    carrier: &mut dyn FrameCarrier,
    state: &mut FrameState,
    tls_limit: Option<usize>,
) -> Result<FrameReport, FrameWindowError> {
    let desired = Desired::load(dir);
    run_frame_window(q, carrier, state, &params(dir, tls_limit), &desired)
}

/// Every record of `expected` is stored with its bytes.
pub(crate) fn assert_stored(server: &TestServer, expected: &[(u64, Vec<u8>)]) {
    for (seq, bytes) in expected {
        let stored = server.records.get(seq).map(|(_, _, b)| b);
        assert_eq!(stored, Some(bytes), "record {seq}");
    }
}

/// Retransmissions repeat a frame's bytes exactly; re-packed records their
/// bytes; fresh counters are unique per epoch; every status's low water is
/// its own counter.
pub(crate) fn assert_counters_sound(server: &TestServer) {
    assert!(
        server.conflicts.is_empty(),
        "re-packed with other bytes: {:?}",
        server.conflicts
    );
    let mut by_counter: BTreeMap<(u32, u32), &Vec<u8>> = BTreeMap::new();
    for (epoch, counter, bytes) in &server.seen {
        let first = by_counter.entry((*epoch, *counter)).or_insert(bytes);
        assert_eq!(
            *first, bytes,
            "counter {counter} sealed two different frames"
        );
    }
    let unique: BTreeSet<_> = server.fresh.iter().collect();
    assert_eq!(unique.len(), server.fresh.len(), "a counter was reused");
    for ((_, counter, _), (_, low_water)) in server.seen.iter().zip(&server.statuses) {
        assert_eq!(
            counter, low_water,
            "one frame in flight: low water = its counter"
        );
    }
}

/// Every sequence number below `next_seq` is stored exactly once: as a
/// record, or folded into exactly one stored summary (counted as the
/// end-to-end tests count them: a summary covers `first_seq..=seq`, and
/// records plus folded heartbeats add up to `next_seq`).
pub(crate) fn assert_every_record_once(server: &TestServer, next_seq: u64) {
    let mut covered = vec![0u32; usize::try_from(next_seq).unwrap()];
    let (mut plain, mut folded) = (0, 0);
    for (seq, (_, _, bytes)) in &server.records {
        let seq = usize::try_from(*seq).unwrap();
        match Payload::decode(bytes) {
            Ok(Payload::Summary(s)) => {
                folded += u64::from(s.heartbeats);
                for c in &mut covered[usize::try_from(s.first_seq).unwrap()..=seq] {
                    *c += 1;
                }
            }
            _ => {
                plain += 1;
                covered[seq] += 1;
            }
        }
    }
    let missing: Vec<usize> = (0..covered.len()).filter(|&i| covered[i] == 0).collect();
    assert!(missing.is_empty(), "never stored: {missing:?}");
    assert_eq!(plain + folded, next_seq, "a heartbeat counted twice");
}

pub(crate) fn queued(q: &Mutex<TestQueue>) -> Vec<u64> {
    let mut q = q.lock().unwrap();
    q.read_batch(usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

mod deferred;
mod delivery;
mod parts;
mod policy;
mod state;
