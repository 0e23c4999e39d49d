//! Retention on both backends, through [`crate::retention::Retention`]'s
//! pass with a manual clock: records received before the cutoff are gone
//! (every class, in chunks), younger ones and each device's newest record
//! stay, `acked_through` does not move, audit records are untouched, old
//! events of Flotta JSON heartbeats are gone; a pass over many devices
//! with nothing to delete is quick (printed).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use flotta_proto::payload::{Event, Level, Payload};
use flotta_proto::record::RecordClass;
use serde_json::json;

use super::test_backends::{Backend, both_backends};
use super::*;
use crate::clock::{ManualClock, from_unix_ms};
use crate::metrics::Metrics;
use crate::retention::{Retention, RetentionSettings};

const DAY: u64 = 86_400_000;
/// "Now" of the tests: day 100.
const NOW: u64 = 100 * DAY;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrol(s: &dyn Store, d: &DeviceId) {
    s.enrol(d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
}

/// Records `seqs` of every class in turn, received at `received_ms`.
fn put(s: &dyn Store, d: &DeviceId, seqs: std::ops::RangeInclusive<u64>, received_ms: u64) {
    let classes = [RecordClass::Heartbeat, RecordClass::Log, RecordClass::Event];
    let rs: Vec<NewRecord> = seqs
        .map(|seq| NewRecord {
            seq,
            at_ms: seq,
            class: classes[usize::try_from(seq % 3).unwrap()],
            payload: vec![1, 2, 3],
        })
        .collect();
    s.ingest_batch(d, &rs, None, Contact::at(received_ms))
        .unwrap();
}

fn seqs(s: &dyn Store, d: &DeviceId) -> Vec<u64> {
    s.records(d, None, 10_000)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect()
}

fn json_events(s: &dyn Store, d: &DeviceId, at_ms: u64, received_ms: u64) {
    let hb = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({}),
        hardware: None,
        seq: None,
    };
    let payload = Payload::Event(Event {
        reason: "R".into(),
        message: format!("at {at_ms}"),
        level: Level::Info,
    })
    .encode();
    let events: Vec<JsonEvent> = (0..3)
        .map(|index| JsonEvent {
            at_ms,
            index,
            payload: payload.clone(),
        })
        .collect();
    s.update_status(d, &hb, &events, received_ms).unwrap();
}

pub(crate) fn retention(
    store: Arc<dyn Store>,
    keep_days: u32,
    chunk_rows: usize,
) -> (Retention, Arc<Metrics>) {
    let clock = Arc::new(ManualClock::new(from_unix_ms(NOW)));
    let metrics = Metrics::shared();
    let settings = RetentionSettings {
        chunk_rows,
        device_page: 2,
        pause: Duration::ZERO,
        ..RetentionSettings::new(keep_days)
    };
    (
        Retention::new(store, clock, settings, metrics.clone()),
        metrics,
    )
}

fn old_rows_go_the_newest_and_audit_stay(backend: &dyn Backend) {
    let s: Arc<dyn Store> = Arc::from(backend.open());
    let (a, b, c, e) = (id("dev-a"), id("dev-b"), id("dev-c"), id("dev-e"));
    for d in [&a, &b, &c, &e] {
        enrol(&*s, d);
    }
    let old = NOW - 31 * DAY;
    let young = NOW - 29 * DAY;
    put(&*s, &a, 1..=10, old);
    put(&*s, &a, 11..=15, young);
    put(&*s, &b, 1..=5, old);
    put(&*s, &c, 7..=7, old);
    json_events(&*s, &a, 1, old);
    json_events(&*s, &a, 2, young);
    s.append_audit(&AuditEntry {
        at_ms: old,
        principal: "ops".into(),
        role: "admin".into(),
        via: "token".into(),
        method: "POST".into(),
        path: "/x".into(),
        status: 200,
        detail: "old".into(),
    })
    .unwrap();
    let acked: Vec<_> = [&a, &b, &c, &e]
        .iter()
        .map(|d| s.acked_through(d).unwrap())
        .collect();

    // chunks of 3 rows: several transactions per device; pages of 2 devices.
    let (r, metrics) = retention(s.clone(), 30, 3);
    let report = r.pass(&AtomicBool::new(false)).unwrap();
    assert_eq!(report.cutoff_ms, NOW - 30 * DAY);
    assert_eq!(report.records, 10 + 4);
    assert_eq!(report.json_events, 3);
    assert_eq!(report.devices, 4);
    assert_eq!(report.pruned_devices, 2, "c's only record is its newest");
    assert!(!report.interrupted);
    assert_eq!(seqs(&*s, &a), (11..=15).collect::<Vec<_>>());
    assert_eq!(seqs(&*s, &b), [5], "the newest record stays");
    assert_eq!(seqs(&*s, &c), [7]);
    let after: Vec<_> = [&a, &b, &c, &e]
        .iter()
        .map(|d| s.acked_through(d).unwrap())
        .collect();
    assert_eq!(after, acked);
    assert_eq!(after, [Some(15), Some(5), Some(7), None]);
    // JSON events were sent at 1 (old) and 2 (young); batch events at their seq.
    let events = s.events(&a, 100).unwrap();
    let sent: Vec<u64> = events
        .iter()
        .filter(|e| e.at_ms < 10)
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(sent, [2, 2, 2]);
    assert_eq!(s.audit_log(None, 10).unwrap().len(), 1, "audit untouched");
    let text = metrics.encode();
    assert!(
        text.contains("flotta_retention_deleted_total{table=\"records\"} 14"),
        "{text}"
    );
    assert!(
        text.contains("flotta_retention_pass_seconds_count 1"),
        "{text}"
    );

    // Nothing is left to do; a new record makes b's old newest deletable.
    assert_eq!(r.pass(&AtomicBool::new(false)).unwrap().records, 0);
    put(&*s, &b, 6..=6, young);
    assert_eq!(r.pass(&AtomicBool::new(false)).unwrap().records, 1);
    assert_eq!(seqs(&*s, &b), [6]);

    // A young record low in seq: old rows behind it wait, none young goes.
    put(&*s, &e, 1..=1, young);
    put(&*s, &e, 2..=4, old);
    put(&*s, &e, 5..=5, young);
    assert_eq!(r.pass(&AtomicBool::new(false)).unwrap().records, 0);
    assert_eq!(seqs(&*s, &e), [1, 2, 3, 4, 5]);

    // A stopped pass deletes nothing; 0 days keeps everything.
    let f = id("dev-f");
    enrol(&*s, &f);
    put(&*s, &f, 1..=3, old);
    put(&*s, &f, 4..=4, young);
    let stopped = r.pass(&AtomicBool::new(true)).unwrap();
    assert!(stopped.interrupted);
    assert_eq!(seqs(&*s, &f), [1, 2, 3, 4]);
    let (forever, _) = retention(s.clone(), 0, 3);
    assert_eq!(forever.pass(&AtomicBool::new(false)).unwrap().records, 0);
    assert_eq!(seqs(&*s, &f), [1, 2, 3, 4]);
    assert_eq!(r.pass(&AtomicBool::new(false)).unwrap().records, 3);
    assert_eq!(seqs(&*s, &f), [4]);
}

/// The chunk's own guard: every record old, none the newest deleted.
fn a_chunk_never_deletes_the_newest(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-one");
    enrol(&*s, &d);
    put(&*s, &d, 1..=4, 10);
    let chunk = s.delete_expired_records(&d, 1_000, 10).unwrap();
    assert_eq!(
        chunk,
        ExpiredChunk {
            deleted: 3,
            more: false
        }
    );
    assert_eq!(seqs(&*s, &d), [4]);
    let chunk = s.delete_expired_records(&d, 1_000, 10).unwrap();
    assert_eq!(chunk.deleted, 0);
    assert_eq!(s.acked_through(&d).unwrap(), Some(4));
    put(&*s, &d, 5..=9, 10);
    let chunk = s.delete_expired_records(&d, 1_000, 2).unwrap();
    assert_eq!(
        chunk,
        ExpiredChunk {
            deleted: 2,
            more: true
        }
    );
    assert_eq!(seqs(&*s, &d), [6, 7, 8, 9]);
}

/// Many devices, none with anything to delete (young records, or one old
/// record that is the device's newest): one pass looks at each and
/// deletes nothing, quickly.
fn a_pass_with_nothing_old_is_quick(backend: &dyn Backend) {
    let s: Arc<dyn Store> = Arc::from(backend.open());
    const DEVICES: usize = 2_000;
    for n in 0..DEVICES {
        let d = id(&format!("dev-{n:05}"));
        enrol(&*s, &d);
        if n % 2 == 0 {
            put(&*s, &d, 1..=20, NOW - DAY);
        } else {
            put(&*s, &d, 1..=1, NOW - 90 * DAY);
        }
    }
    let r = Retention::new(
        s.clone(),
        Arc::new(ManualClock::new(from_unix_ms(NOW))),
        RetentionSettings {
            pause: Duration::ZERO,
            ..RetentionSettings::new(30)
        },
        Metrics::shared(),
    );
    let t = Instant::now();
    let report = r.pass(&AtomicBool::new(false)).unwrap();
    let took = t.elapsed();
    println!("retention pass over {DEVICES} devices with nothing old: {took:?} ({report:?})");
    assert_eq!(report.devices, DEVICES);
    assert_eq!(report.pruned_devices, 0);
    assert_eq!(report.records, 0);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

both_backends!(
    old_rows_go_the_newest_and_audit_stay,
    a_chunk_never_deletes_the_newest,
    a_pass_with_nothing_old_is_quick,
);
