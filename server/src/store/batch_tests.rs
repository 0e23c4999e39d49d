//! A batch's records on both backends as the PostgreSQL backend now inserts
//! them (one multi-row statement): duplicates within a batch, a retried
//! batch, an overlapping one and a full window are each stored once, and
//! the acknowledgement is the highest stored `seq`.

use flotta_proto::record::RecordClass;
use serde_json::json;

use super::test_backends::{Backend, both_backends};
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn ns() -> Namespace {
    Namespace::parse("default").unwrap()
}

fn rec(seq: u64, payload: u8) -> NewRecord {
    NewRecord {
        seq,
        at_ms: seq * 1000,
        class: RecordClass::Heartbeat,
        payload: vec![payload; 4],
    }
}

/// `(seq, payload byte, received_ms)` of every stored record.
fn stored(s: &dyn Store, d: &DeviceId) -> Vec<(u64, u8, u64)> {
    s.records(d, None, 1000)
        .unwrap()
        .iter()
        .map(|r| (r.record.seq, r.record.payload[0], r.received_ms))
        .collect()
}

fn duplicates_within_and_across_batches_are_stored_once(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    // Within one batch the first of two equal seqs is kept.
    let batch = [rec(1, 1), rec(2, 2), rec(2, 20), rec(3, 3), rec(1, 10)];
    assert_eq!(
        s.ingest_batch(&d, &batch, None, Contact::at(100)).unwrap(),
        Some(3)
    );
    let first = vec![(1, 1, 100), (2, 2, 100), (3, 3, 100)];
    assert_eq!(stored(&*s, &d), first);
    // The same batch again (a lost answer, retried): nothing changes.
    assert_eq!(
        s.ingest_batch(&d, &batch, None, Contact::at(200)).unwrap(),
        Some(3)
    );
    assert_eq!(stored(&*s, &d), first);
    // Overlapping, out of order: only the new ones are added.
    let batch = [rec(5, 5), rec(3, 30), rec(4, 4)];
    assert_eq!(
        s.ingest_batch(&d, &batch, None, Contact::at(300)).unwrap(),
        Some(5)
    );
    let mut all = first.clone();
    all.extend([(4, 4, 300), (5, 5, 300)]);
    assert_eq!(stored(&*s, &d), all);
    // An empty batch acknowledges what is stored.
    assert_eq!(
        s.ingest_batch(&d, &[], None, Contact::at(400)).unwrap(),
        Some(5)
    );
    // Another device's records are its own.
    let e = id("dev-2");
    s.enrol(&e, &ns(), None, true, 1).unwrap();
    assert_eq!(
        s.ingest_batch(&e, &[], None, Contact::at(400)).unwrap(),
        None
    );
    assert_eq!(
        s.ingest_batch(&e, &[rec(1, 9)], None, Contact::at(400))
            .unwrap(),
        Some(1)
    );
    assert_eq!(stored(&*s, &d), all);
}

fn a_window_of_sixty_heartbeats_with_its_status_is_stored_whole(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    let window: Vec<_> = (1..=60).map(|q| rec(q, q as u8)).collect();
    let status = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({"seq": 60}),
        hardware: None,
        seq: Some(60),
    };
    for attempt in 0..2 {
        let acked = s.ingest_batch(&d, &window, Some(&status), Contact::at(1000 + attempt));
        assert_eq!(acked.unwrap(), Some(60));
    }
    let got = stored(&*s, &d);
    assert_eq!(got.len(), 60);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, r)| *r == (i as u64 + 1, i as u8 + 1, 1000))
    );
    let dev = s.device(&d).unwrap().unwrap();
    assert_eq!(dev.status.as_deref(), Some("up"));
    assert_eq!(dev.last_seen_ms, Some(1001));
}

fn a_batch_of_an_unknown_device_stores_nothing(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-x");
    let err = s
        .ingest_batch(&d, &[rec(1, 1)], None, Contact::at(1))
        .unwrap_err();
    assert!(matches!(err, StoreError::DeviceNotFound(_)), "{err}");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    assert_eq!(stored(&*s, &d), vec![]);
}

both_backends!(
    duplicates_within_and_across_batches_are_stored_once,
    a_window_of_sixty_heartbeats_with_its_status_is_stored_whole,
    a_batch_of_an_unknown_device_stores_nothing,
);
