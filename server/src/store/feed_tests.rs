//! [`Store::feed`] and [`Follower`] on both backends: paging through many
//! events (ties in time across devices and sources included) never skips
//! nor repeats a row, in either order, per device and fleet-wide; `since`;
//! a follower delivers rows that commit late inside its overlap window,
//! once.

use flotta_proto::payload::{Event, Level, LogLine, Payload};
use flotta_proto::record::RecordClass;
use serde_json::json;

use super::test_backends::{Backend, both_backends};
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrol(s: &dyn Store, d: &DeviceId) {
    s.enrol(d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
}

fn event(n: u64) -> Vec<u8> {
    Payload::Event(Event {
        reason: format!("R{n}"),
        message: format!("event {n}"),
        level: Level::Info,
    })
    .encode()
}

/// An event record `seq` at device time `at_ms`, received at `received_ms`.
fn put_event(s: &dyn Store, d: &DeviceId, seq: u64, at_ms: u64, received_ms: u64) {
    let r = NewRecord {
        seq,
        at_ms,
        class: RecordClass::Event,
        payload: event(seq),
    };
    s.ingest_batch(d, &[r], None, Contact::at(received_ms))
        .unwrap();
}

/// Events of a Flotta JSON heartbeat sent at `at_ms`, received at `received_ms`.
fn put_json_events(s: &dyn Store, d: &DeviceId, at_ms: u64, n: u32, received_ms: u64) {
    let hb = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({}),
        hardware: None,
        seq: None,
    };
    let events: Vec<JsonEvent> = (0..n)
        .map(|index| JsonEvent {
            at_ms,
            index,
            payload: event(1000 + u64::from(index)),
        })
        .collect();
    s.update_status(d, &hb, &events, received_ms).unwrap();
}

fn query(device: Option<&DeviceId>, order: FeedOrder, limit: usize) -> FeedQuery {
    FeedQuery {
        kind: FeedKind::Events,
        device: device.cloned(),
        order,
        after: None,
        since_ms: 0,
        limit,
    }
}

/// Every key of `q`, page by page of `q.limit`.
fn paged(s: &dyn Store, q: &FeedQuery) -> Vec<FeedKey> {
    let mut keys = Vec::new();
    let mut q = q.clone();
    loop {
        let page = s.feed(&q).unwrap();
        assert!(page.len() <= q.limit);
        keys.extend(page.iter().map(|r| r.key.clone()));
        match page.last() {
            Some(last) if page.len() == q.limit => q.after = Some(last.key.clone()),
            _ => return keys,
        }
    }
}

/// Two devices, batch events and heartbeat events, many ties on both
/// clocks: 3 × 40 records + 2 heartbeats of 3 events.
fn fleet(s: &dyn Store) -> (DeviceId, DeviceId) {
    let (a, b) = (id("dev-a"), id("dev-b"));
    enrol(s, &a);
    enrol(s, &b);
    for seq in 1..=40 {
        // Device times collide every 4 records; arrivals every 5.
        put_event(s, &a, seq, 1000 + seq / 4, 5000 + seq / 5);
        put_event(s, &b, seq, 1000 + seq / 4, 5000 + seq / 5);
        put_event(s, &b, 100 + seq, 1000 + seq / 4, 5000 + seq / 5);
    }
    put_json_events(s, &a, 1003, 3, 5002);
    put_json_events(s, &b, 1005, 3, 5004);
    (a, b)
}

fn paging_never_skips_nor_repeats(backend: &dyn Backend) {
    let s = backend.open();
    let (a, _) = fleet(&*s);
    for order in [FeedOrder::DeviceTime, FeedOrder::Arrival] {
        let all = s.feed(&query(None, order, 10_000)).unwrap();
        assert_eq!(all.len(), 126, "{order:?}");
        let keys: Vec<FeedKey> = all.iter().map(|r| r.key.clone()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        if order == FeedOrder::DeviceTime {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{order:?}: one order, no duplicate key");
        for r in &all {
            let t = match order {
                FeedOrder::DeviceTime => r.at_ms,
                FeedOrder::Arrival => r.received_ms,
            };
            assert_eq!(r.key.t, t);
        }
        for limit in [1, 7, 50] {
            assert_eq!(
                paged(&*s, &query(None, order, limit)),
                keys,
                "{order:?} {limit}"
            );
        }
        let mine: Vec<FeedKey> = keys
            .iter()
            .filter(|k| k.device == "dev-a")
            .cloned()
            .collect();
        assert_eq!(mine.len(), 43);
        assert_eq!(paged(&*s, &query(Some(&a), order, 4)), mine, "{order:?}");
    }
    // Newest first by device time; at equal times the greater device id first.
    let first = s.feed(&query(None, FeedOrder::DeviceTime, 1)).unwrap();
    assert_eq!(first[0].at_ms, 1010);
    assert_eq!(first[0].key.device, "dev-b");
}

fn since_and_logs(backend: &dyn Backend) {
    let s = backend.open();
    let (a, _) = fleet(&*s);
    let mut q = query(None, FeedOrder::DeviceTime, 1000);
    q.since_ms = 1009;
    let rows = s.feed(&q).unwrap();
    assert_eq!(rows.len(), 3 * 5, "at 1009 and 1010: seqs 36..=40 of each");
    assert!(rows.iter().all(|r| r.at_ms >= 1009));
    // Log lines are their own feed, per device only.
    let line = |n: u64| {
        Payload::Log(LogLine {
            source: "web".into(),
            level: Level::Warn,
            message: format!("line {n}"),
        })
        .encode()
    };
    let logs: Vec<NewRecord> = (200..210)
        .map(|seq| NewRecord {
            seq,
            at_ms: 2000 + seq,
            class: RecordClass::Log,
            payload: line(seq),
        })
        .collect();
    s.ingest_batch(&a, &logs, None, Contact::at(9000)).unwrap();
    let mut q = query(Some(&a), FeedOrder::Arrival, 4);
    q.kind = FeedKind::Logs;
    let keys = paged(&*s, &q);
    assert_eq!(
        keys.iter().map(|k| k.a).collect::<Vec<_>>(),
        (200..210).collect::<Vec<_>>()
    );
    q.device = None;
    assert!(s.feed(&q).is_err(), "no fleet-wide log feed");
    // Events never show log lines.
    let events = paged(&*s, &query(Some(&a), FeedOrder::Arrival, 100));
    assert_eq!(events.len(), 43);
}

fn follower_delivers_late_rows_once(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-a");
    enrol(&*s, &d);
    put_event(&*s, &d, 1, 1, 100_000);
    let q = query(None, FeedOrder::Arrival, 0);
    // Started "now" (101 s): the row at 100 s was there, not delivered.
    let mut f = Follower::start(&*s, q.clone(), FeedKey::start_of(101_000)).unwrap();
    assert!(f.poll(&*s).unwrap().is_empty());
    let seqs = |rows: Vec<FeedRow>| rows.iter().map(|r| r.key.a).collect::<Vec<_>>();
    put_event(&*s, &d, 2, 2, 103_000);
    put_event(&*s, &d, 3, 3, 104_000);
    assert_eq!(seqs(f.poll(&*s).unwrap()), [2, 3]);
    assert_eq!(f.position().t, 104_000);
    // Committed late: received before what was delivered (and one even
    // before the follower started), inside the overlap window.
    put_event(&*s, &d, 4, 4, 103_500);
    put_event(&*s, &d, 5, 5, 100_500);
    put_json_events(&*s, &d, 6, 2, 104_000);
    let late = f.poll(&*s).unwrap();
    assert_eq!(seqs(late.clone()), [5, 4, 6, 6]);
    assert_eq!(late[2].key.source, 1);
    assert!(f.poll(&*s).unwrap().is_empty(), "each row once");
    // Beyond the window: missed (documented), and nothing repeats.
    put_event(&*s, &d, 7, 7, 104_000 - OVERLAP_MS - 1);
    put_event(&*s, &d, 8, 8, 120_000);
    assert_eq!(seqs(f.poll(&*s).unwrap()), [8]);
    assert!(f.poll(&*s).unwrap().is_empty());
    // A new follower resuming from an earlier position (Last-Event-ID)
    // delivers what lies after it, and counts what lies before as sent.
    let mut again = Follower::start(
        &*s,
        q,
        FeedKey {
            t: 104_000,
            device: "dev-a".into(),
            source: 0,
            a: 3,
            b: 0,
        },
    )
    .unwrap();
    assert_eq!(seqs(again.poll(&*s).unwrap()), [6, 6, 8]);
}

fn follower_pages_through_a_flood(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-a");
    enrol(&*s, &d);
    let mut f = Follower::start(
        &*s,
        query(Some(&d), FeedOrder::Arrival, 0),
        FeedKey::start_of(1),
    )
    .unwrap();
    let records: Vec<NewRecord> = (1..=1200)
        .map(|seq| NewRecord {
            seq,
            at_ms: seq,
            class: RecordClass::Event,
            payload: event(seq),
        })
        .collect();
    s.ingest_batch(&d, &records, None, Contact::at(50_000))
        .unwrap();
    let got: Vec<u64> = f.poll(&*s).unwrap().iter().map(|r| r.key.a).collect();
    assert_eq!(got, (1..=1200).collect::<Vec<_>>());
    assert!(f.poll(&*s).unwrap().is_empty());
    put_event(&*s, &d, 1201, 1201, 49_999);
    assert_eq!(
        f.poll(&*s).unwrap().len(),
        1,
        "a late row behind 1200 seen ones"
    );
}

both_backends!(
    paging_never_skips_nor_repeats,
    since_and_logs,
    follower_delivers_late_rows_once,
    follower_pages_through_a_flood,
);
