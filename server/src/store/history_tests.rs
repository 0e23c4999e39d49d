//! [`Store::heartbeat_history`] on both backends (heartbeats and window
//! summaries in the range, oldest first by device time, other devices and
//! classes left out, the limit, undecodable payloads skipped and counted),
//! the pure decoder, and what the range read costs on
//! SQLite with and without the heartbeat index (printed).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use flotta_proto::payload::{
    DeviceStatus, Event, Heartbeat, Level, LogLine, Payload, WindowSummary,
};
use flotta_proto::record::RecordClass;

use super::test_backends::{Backend, both_backends};
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrol(s: &dyn Store, d: &DeviceId) {
    s.enrol(d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
}

fn heartbeat(n: u64, battery: Option<u8>) -> Heartbeat {
    Heartbeat {
        status: if n.is_multiple_of(2) {
            DeviceStatus::Up
        } else {
            DeviceStatus::Degraded
        },
        agent_version: "0.1.0".into(),
        uptime_seconds: 100 + n,
        queue_records: n,
        queue_bytes: 10 * n,
        dropped_records: [n, 1, 2],
        damaged_bytes: 0,
        battery_percent: battery,
        workloads: vec![],
    }
}

fn record(seq: u64, at_ms: u64, payload: &Payload) -> NewRecord {
    NewRecord {
        seq,
        at_ms,
        class: payload.class(),
        payload: payload.encode(),
    }
}

fn log(seq: u64, at_ms: u64) -> NewRecord {
    record(
        seq,
        at_ms,
        &Payload::Log(LogLine {
            source: "agent".into(),
            level: Level::Info,
            message: format!("line {seq}"),
        }),
    )
}

fn history_in_range_oldest_first(backend: &dyn Backend) {
    let s = backend.open();
    let (d, other) = (id("dev-h"), id("dev-other"));
    enrol(&*s, &d);
    enrol(&*s, &other);
    let summary = Payload::Summary(WindowSummary {
        heartbeats: 6,
        first_seq: 10,
        first_at_ms: 4_000,
        battery_min_percent: Some(40),
        battery_max_percent: Some(55),
        degraded: 1,
        last: heartbeat(7, Some(41)),
    });
    let mut records = vec![
        record(1, 500, &Payload::Heartbeat(heartbeat(1, Some(90)))),
        record(2, 1_000, &Payload::Heartbeat(heartbeat(2, Some(80)))),
        log(3, 1_500),
        // Device time not in seq order: read by time.
        record(4, 3_000, &Payload::Heartbeat(heartbeat(4, None))),
        record(5, 2_000, &Payload::Heartbeat(heartbeat(5, Some(70)))),
        record(
            6,
            2_500,
            &Payload::Event(Event {
                reason: "R".into(),
                message: "m".into(),
                level: Level::Warn,
            }),
        ),
        // Heartbeat class, bytes that are no payload.
        NewRecord {
            seq: 7,
            at_ms: 2_600,
            class: RecordClass::Heartbeat,
            payload: vec![0xff, 0xff, 0xff],
        },
        record(15, 5_000, &summary),
        record(16, 9_000, &Payload::Heartbeat(heartbeat(16, Some(60)))),
    ];
    s.ingest_batch(&d, &records, None, Contact::at(10)).unwrap();
    records.truncate(3);
    s.ingest_batch(&other, &records, None, Contact::at(10))
        .unwrap();

    let h = s.heartbeat_history(&d, 1_000, 9_000, 100).unwrap();
    let seqs: Vec<u64> = h.samples.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, [2, 5, 4, 15], "by device time, in [from, to)");
    assert_eq!(h.undecodable, 1);
    assert!(!h.truncated);
    let first = &h.samples[0];
    assert_eq!(
        *first,
        HeartbeatSample {
            at_ms: 1_000,
            seq: 2,
            heartbeats: 1,
            battery_percent: Some(80),
            battery_min_percent: Some(80),
            battery_max_percent: Some(80),
            queue_records: 2,
            queue_bytes: 20,
            dropped_records: 5,
            uptime_seconds: 102,
            status: DeviceStatus::Up,
        }
    );
    assert_eq!(h.samples[2].battery_percent, None);
    let sum = &h.samples[3];
    assert_eq!(sum.at_ms, 5_000);
    assert_eq!(sum.heartbeats, 6);
    assert_eq!(sum.battery_percent, Some(41));
    assert_eq!(
        (sum.battery_min_percent, sum.battery_max_percent),
        (Some(40), Some(55))
    );
    assert_eq!(sum.queue_records, 7);
    assert_eq!(sum.dropped_records, 10);
    assert_eq!(sum.status, DeviceStatus::Degraded);

    // The limit bounds the rows read (the undecodable one counts).
    let h = s.heartbeat_history(&d, 0, u64::MAX, 4).unwrap();
    let seqs: Vec<u64> = h.samples.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, [1, 2, 5]);
    assert_eq!(h.undecodable, 1);
    assert!(h.truncated);
    // Empty ranges and unknown devices are empty.
    assert!(
        s.heartbeat_history(&d, 9_001, 20_000, 10)
            .unwrap()
            .samples
            .is_empty()
    );
    assert!(
        s.heartbeat_history(&d, 5_000, 5_000, 10)
            .unwrap()
            .samples
            .is_empty()
    );
    assert!(
        s.heartbeat_history(&id("dev-none"), 0, u64::MAX, 10)
            .unwrap()
            .samples
            .is_empty()
    );
}

both_backends!(history_in_range_oldest_first);

#[test]
fn decoder_skips_what_is_not_a_heartbeat() {
    let log = log(1, 1).payload;
    assert_eq!(decode_sample(1, 1, &log), None);
    assert_eq!(decode_sample(1, 1, &[]), None);
    let mut max = heartbeat(0, Some(1));
    max.dropped_records = [u64::MAX, 5, 5];
    let s = decode_sample(3, 4, &Payload::Heartbeat(max).encode()).unwrap();
    assert_eq!(s.dropped_records, u64::MAX, "saturates");
    assert_eq!((s.seq, s.at_ms), (3, 4));
}

/// Milliseconds of the best of 5 reads of `[from, to)`.
fn read_ms(s: &SqliteStore, d: &DeviceId, from: u64, to: u64) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        n = s
            .heartbeat_history(d, from, to, 100_000)
            .unwrap()
            .samples
            .len();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    (best, n)
}

/// Milliseconds of storing 20 windows of 60 heartbeats each.
fn windows_ms(s: &SqliteStore, d: &DeviceId, first_seq: u64) -> f64 {
    let t = Instant::now();
    for w in 0..20u64 {
        let records: Vec<NewRecord> = (0..60)
            .map(|i| {
                let seq = first_seq + w * 60 + i;
                record(
                    seq,
                    seq * 60_000,
                    &Payload::Heartbeat(heartbeat(seq, Some(50))),
                )
            })
            .collect();
        s.ingest_batch(d, &records, None, Contact::at(1)).unwrap();
    }
    t.elapsed().as_secs_f64() * 1e3
}

/// A device with 30 days of one-a-minute heartbeats and 10 000 log lines
/// among 20 other devices: reads of an hour, a day and the month, with the
/// heartbeat index and without it, and the cost of storing windows.
#[test]
fn range_read_cost() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
    let d = id("dev-month");
    enrol(&s, &d);
    const MINUTES: u64 = 30 * 24 * 60;
    let mut seq = 0;
    let mut batch = Vec::new();
    for m in 0..MINUTES {
        seq += 1;
        batch.push(record(
            seq,
            m * 60_000,
            &Payload::Heartbeat(heartbeat(m, Some(50))),
        ));
        if m.is_multiple_of(4) && seq < MINUTES + 10_000 {
            seq += 1;
            batch.push(log(seq, m * 60_000 + 1));
        }
        if batch.len() >= 1_000 {
            s.ingest_batch(&d, &batch, None, Contact::at(1)).unwrap();
            batch.clear();
        }
    }
    s.ingest_batch(&d, &batch, None, Contact::at(1)).unwrap();
    for n in 0..20 {
        let o = id(&format!("dev-o{n:02}"));
        enrol(&s, &o);
        let rs: Vec<NewRecord> = (1..=2_000)
            .map(|q| record(q, q * 60_000, &Payload::Heartbeat(heartbeat(q, None))))
            .collect();
        s.ingest_batch(&o, &rs, None, Contact::at(1)).unwrap();
    }
    let (w1, w2) = (id("dev-w1"), id("dev-w2"));
    enrol(&s, &w1);
    enrol(&s, &w2);
    let day = 24 * 3_600_000;
    let mid = 15 * day;
    let ranges = [
        ("hour", mid, mid + 3_600_000),
        ("day", mid, mid + day),
        ("30 days", 0, MINUTES * 60_000),
    ];
    let mut with = Vec::new();
    for (name, from, to) in ranges {
        let (ms, n) = read_ms(&s, &d, from, to);
        with.push(ms);
        println!("history {name}: {n} samples in {ms:.2} ms with the index");
    }
    let win_with = windows_ms(&s, &w1, 1);
    s.execute_batch_for_tests("DROP INDEX records_device_heartbeat_time")
        .unwrap();
    let mut without = Vec::new();
    for (name, from, to) in ranges {
        let (ms, n) = read_ms(&s, &d, from, to);
        without.push(ms);
        println!("history {name}: {n} samples in {ms:.2} ms without the index");
    }
    let win_without = windows_ms(&s, &w2, 1);
    println!(
        "20 windows of 60 heartbeats: {win_with:.1} ms with the index, {win_without:.1} ms without"
    );
    // The hour is the console's common read: the index must make it
    // cheaper than walking the device's rows (generously).
    assert!(with[0] * 2.0 < without[0], "{with:?} vs {without:?}");
    assert!(with[1] < 200.0, "a day of minutes took {} ms", with[1]);
}
