//! Unit tests of the store, each run against SQLite (a real file in a temp
//! dir) and PostgreSQL (a fresh database of a temporary cluster).

use std::collections::BTreeMap;

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

fn rec(seq: u64) -> NewRecord {
    NewRecord {
        seq,
        at_ms: seq / 2,
        class: RecordClass::Log,
        payload: vec![seq as u8; 3],
    }
}

fn seqs(store: &dyn Store, d: &DeviceId) -> Vec<u64> {
    store
        .records(d, None, 1000)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect()
}

fn enrolment_and_approval(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    let hw = json!({"hostname": "h1"});
    assert_eq!(
        s.enrol(&d, &ns(), Some(&hw), false, 5).unwrap(),
        EnrolOutcome::Created(Approval::Pending)
    );
    assert_eq!(
        s.enrol(&d, &ns(), None, false, 6).unwrap(),
        EnrolOutcome::StillPending
    );
    let dev = s.device(&d).unwrap().unwrap();
    assert_eq!(dev.approval, Approval::Pending);
    assert_eq!(dev.hardware, Some(hw));
    assert_eq!(dev.enrolled_at_ms, 5);
    s.approve(&d).unwrap();
    assert_eq!(
        s.enrol(&d, &ns(), None, false, 7).unwrap(),
        EnrolOutcome::AlreadyApproved
    );
    assert_eq!(
        s.enrol(&id("dev-2"), &ns(), None, true, 7).unwrap(),
        EnrolOutcome::Created(Approval::Approved)
    );
    assert!(matches!(
        s.approve(&id("nope")),
        Err(StoreError::DeviceNotFound(_))
    ));
    assert_eq!(s.devices().unwrap().len(), 2);
}

fn registration_flags(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    s.mark_registered(&d, Some(&json!({"hostname": "x"})), 9)
        .unwrap();
    s.mark_cert_used(&d).unwrap();
    let dev = s.device(&d).unwrap().unwrap();
    assert!(dev.registered && dev.cert_used);
    assert_eq!(dev.hardware, Some(json!({"hostname": "x"})));
    assert!(matches!(
        s.mark_registered(&id("x"), None, 1),
        Err(StoreError::DeviceNotFound(_))
    ));
}

fn batches_are_deduplicated_by_device_and_seq(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    assert_eq!(s.acked_through(&d).unwrap(), None);
    assert!(!s.device(&d).unwrap().unwrap().cert_used);
    let batch: Vec<_> = (1..=3).map(rec).collect();
    assert_eq!(
        s.ingest_batch(&d, &batch, None, Contact::at(10)).unwrap(),
        Some(3)
    );
    assert!(
        s.device(&d).unwrap().unwrap().cert_used,
        "a batch proves the device cert is in use"
    );
    assert_eq!(
        s.ingest_batch(&d, &batch, None, Contact::at(11)).unwrap(),
        Some(3)
    );
    assert_eq!(seqs(&*s, &d), vec![1, 2, 3]);
    let overlap: Vec<_> = (2..=5).map(rec).collect();
    assert_eq!(
        s.ingest_batch(&d, &overlap, None, Contact::at(12)).unwrap(),
        Some(5)
    );
    assert_eq!(seqs(&*s, &d), vec![1, 2, 3, 4, 5]);
    // The first copy wins: a re-sent record does not overwrite.
    let stored = s.records(&d, Some(1), 1).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record, rec(2));
    assert_eq!(stored[0].received_ms, 10);
    assert_eq!(s.device(&d).unwrap().unwrap().last_seen_ms, Some(12));

    // Same seqs for another device are distinct records.
    let e = id("dev-2");
    s.enrol(&e, &ns(), None, true, 1).unwrap();
    assert_eq!(
        s.ingest_batch(&e, &batch, None, Contact::at(13)).unwrap(),
        Some(3)
    );
    assert_eq!(seqs(&*s, &e), vec![1, 2, 3]);
}

fn failed_batch_stores_nothing(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    let bad = vec![rec(1), rec(2), rec(u64::MAX)];
    assert!(matches!(
        s.ingest_batch(&d, &bad, None, Contact::at(5)),
        Err(StoreError::OutOfRange(_))
    ));
    assert!(seqs(&*s, &d).is_empty());
    assert!(matches!(
        s.ingest_batch(&id("ghost"), &[rec(1)], None, Contact::at(5)),
        Err(StoreError::DeviceNotFound(_))
    ));
}

fn older_heartbeats_do_not_overwrite_newer_status(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    let up = |seq| StatusUpdate {
        status: if seq % 2 == 0 {
            "up".into()
        } else {
            "degraded".into()
        },
        heartbeat: json!({"seq": seq}),
        hardware: None,
        seq: Some(seq),
    };
    s.ingest_batch(&d, &[], Some(&up(4)), Contact::at(20))
        .unwrap();
    s.ingest_batch(&d, &[], Some(&up(3)), Contact::at(21))
        .unwrap();
    let dev = s.device(&d).unwrap().unwrap();
    assert_eq!(dev.status.as_deref(), Some("up"));
    assert_eq!(dev.last_heartbeat, Some(json!({"seq": 4})));
    // A JSON heartbeat (no seq) always applies.
    let json_hb = StatusUpdate {
        status: "degraded".into(),
        heartbeat: json!({}),
        hardware: Some(json!({"hostname": "n"})),
        seq: None,
    };
    s.update_status(&d, &json_hb, &[], 30).unwrap();
    let dev = s.device(&d).unwrap().unwrap();
    assert_eq!(dev.status.as_deref(), Some("degraded"));
    assert_eq!(dev.hardware, Some(json!({"hostname": "n"})));
    assert_eq!(dev.last_seen_ms, Some(30));
    assert!(matches!(
        s.update_status(&id("x"), &json_hb, &[], 1),
        Err(StoreError::DeviceNotFound(_))
    ));
}

fn configuration_versions_only_change_with_content(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    assert_eq!(s.configuration(&d).unwrap(), None);
    let a = json!({"workloads": []});
    let b = json!({"workloads": [{"name": "w"}]});
    assert_eq!(s.set_configuration(&d, &a).unwrap(), "1");
    assert_eq!(s.set_configuration(&d, &a).unwrap(), "1");
    assert_eq!(s.set_configuration(&d, &b).unwrap(), "2");
    assert_eq!(
        s.configuration(&d).unwrap(),
        Some(DeviceConfig {
            version: "2".into(),
            spec: b
        })
    );
    assert!(s.set_configuration(&id("x"), &a).is_err());
}

fn labels_and_objects(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    let labels = BTreeMap::from([("site".to_owned(), "a".to_owned())]);
    s.set_labels(&d, &labels).unwrap();
    assert_eq!(s.device(&d).unwrap().unwrap().labels, labels);

    let obj = |ns: &str, name: &str, v| StoredObject {
        kind: "EdgeWorkload".into(),
        namespace: ns.into(),
        name: name.into(),
        body: json!({"v": v}),
    };
    s.put_object(&obj("b", "x", 1)).unwrap();
    s.put_object(&obj("a", "y", 1)).unwrap();
    s.put_object(&obj("a", "y", 2)).unwrap();
    assert_eq!(
        s.get_object("EdgeWorkload", "a", "y").unwrap(),
        Some(obj("a", "y", 2))
    );
    assert_eq!(s.get_object("EdgeDevice", "a", "y").unwrap(), None);
    let all = s.list_objects("EdgeWorkload", None).unwrap();
    assert_eq!(all, vec![obj("a", "y", 2), obj("b", "x", 1)]);
    assert_eq!(
        s.list_objects("EdgeWorkload", Some("b")).unwrap(),
        vec![obj("b", "x", 1)]
    );
    assert!(s.delete_object("EdgeWorkload", "b", "x").unwrap());
    assert!(!s.delete_object("EdgeWorkload", "b", "x").unwrap());
}

fn data_survives_reopening(backend: &dyn Backend) {
    let d = id("dev-1");
    {
        let s = backend.open();
        s.enrol(&d, &ns(), None, true, 1).unwrap();
        s.ingest_batch(&d, &[rec(7)], None, Contact::at(2)).unwrap();
    }
    let s = backend.open();
    assert_eq!(s.acked_through(&d).unwrap(), Some(7));
    s.ping().unwrap();
}

#[test]
fn garbage_database_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flotta.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(!err.is_retriable(), "{err}");
}

fn json_heartbeat_events_are_stored_once_and_listed_with_batch_events(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    let hb = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({}),
        hardware: None,
        seq: None,
    };
    let ev = |at_ms, index, byte| JsonEvent {
        at_ms,
        index,
        payload: vec![byte; 2],
    };
    let events = [ev(100, 0, 1), ev(100, 1, 2)];
    s.update_status(&d, &hb, &events, 10).unwrap();
    // The retried heartbeat adds nothing; the same content in another
    // heartbeat (another sent time) is another event.
    s.update_status(&d, &hb, &events, 11).unwrap();
    s.update_status(&d, &hb, &[ev(300, 0, 1)], 12).unwrap();
    let batch_event = NewRecord {
        seq: 7,
        at_ms: 200,
        class: RecordClass::Event,
        payload: vec![9; 2],
    };
    s.ingest_batch(&d, &[rec(6), batch_event], None, Contact::at(13))
        .unwrap();
    let listed = |limit| -> Vec<(u64, u8)> {
        s.events(&d, limit)
            .unwrap()
            .iter()
            .map(|e| (e.at_ms, e.payload[0]))
            .collect()
    };
    assert_eq!(listed(10), [(100, 1), (100, 2), (200, 9), (300, 1)]);
    assert_eq!(listed(2), [(200, 9), (300, 1)], "the newest, oldest first");
    assert_eq!(
        s.acked_through(&d).unwrap(),
        Some(7),
        "sequence numbers untouched"
    );
    assert_eq!(s.events(&id("other"), 10).unwrap(), []);
}

fn log_lines_are_paged_newest_first_from_a_time_on(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    let event = NewRecord {
        seq: 100,
        at_ms: 20,
        class: RecordClass::Event,
        payload: vec![1],
    };
    // Logs at seq 0..10 (at_ms = seq / 2), and an event that is not a log.
    let mut batch: Vec<NewRecord> = (0..10).map(rec).collect();
    batch.push(event);
    s.ingest_batch(&d, &batch, None, Contact::at(5)).unwrap();
    let page = |since, limit, offset| -> Vec<u8> {
        s.logs(&d, since, limit, offset)
            .unwrap()
            .iter()
            .map(|r| r.payload[0])
            .collect()
    };
    assert_eq!(page(0, 3, 0), [9, 8, 7]);
    assert_eq!(page(0, 3, 3), [6, 5, 4]);
    assert_eq!(page(0, 100, 9), [0]);
    assert_eq!(page(3, 100, 0), [9, 8, 7, 6], "at_ms 3 and after");
    assert!(page(0, 10, 10).is_empty());
    assert!(s.logs(&id("other"), 0, 10, 0).unwrap().is_empty());
}

both_backends!(
    enrolment_and_approval,
    registration_flags,
    batches_are_deduplicated_by_device_and_seq,
    failed_batch_stores_nothing,
    older_heartbeats_do_not_overwrite_newer_status,
    configuration_versions_only_change_with_content,
    labels_and_objects,
    data_survives_reopening,
    json_heartbeat_events_are_stored_once_and_listed_with_batch_events,
    log_lines_are_paged_newest_first_from_a_time_on,
);
