//! The upload interval a batch reports (`Contact`), on both backends: stored
//! in the batch's transaction, kept across a reopen, left alone by batches
//! that say none, by Flotta JSON heartbeats and by sealed frames; and the
//! change feed marks a change of it, never a window that repeats it.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::test_backends::{Backend, both_backends};
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrolled(backend: &dyn Backend) -> (Box<dyn Store>, DeviceId) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
    (s, d)
}

fn beat(n: u64) -> StatusUpdate {
    StatusUpdate {
        status: "up".into(),
        heartbeat: json!({"uptime": n, "workloads": []}),
        hardware: None,
        seq: Some(n),
    }
}

fn interval(s: &dyn Store, d: &DeviceId) -> Option<u32> {
    s.device(d).unwrap().unwrap().contact_interval_seconds
}

/// A sealed frame carrying a heartbeat (frames never carry the interval).
fn frame(counter: u32) -> FrameWrite {
    FrameWrite {
        status: Some(beat(100 + u64::from(counter))),
        ..super::frame_tests::frame(counter, Vec::new(), Vec::new())
    }
}

fn interval_is_stored(backend: &dyn Backend) {
    let (s, d) = enrolled(backend);
    assert_eq!(interval(&*s, &d), None, "none before a batch says one");
    s.ingest_batch(&d, &[], Some(&beat(1)), Contact::with_interval(10, 3600))
        .unwrap();
    assert_eq!(interval(&*s, &d), Some(3600));
    // A batch of an older format says none: the stored one stays.
    s.ingest_batch(&d, &[], Some(&beat(2)), Contact::at(20))
        .unwrap();
    assert_eq!(interval(&*s, &d), Some(3600));
    // Flotta's JSON heartbeat and sealed frames do not carry it.
    s.update_status(&d, &beat(3), &[], 30).unwrap();
    s.create_frame_context(&d, &super::frame_tests::keys([1, 2, 3, 4]), 35)
        .unwrap();
    s.ingest_frame(&frame(1), 40).unwrap();
    let device = s.device(&d).unwrap().unwrap();
    assert_eq!(
        (device.last_seen_ms, device.contact_interval_seconds),
        (Some(40), Some(3600))
    );
    // Kept across a reopen; a new interval replaces it.
    let s = backend.open();
    assert_eq!(interval(&*s, &d), Some(3600));
    s.ingest_batch(&d, &[], None, Contact::with_interval(50, 900))
        .unwrap();
    assert_eq!(interval(&*s, &d), Some(900));
    assert_eq!(s.devices().unwrap()[0].contact_interval_seconds, Some(900));
}

fn interval_changes_are_in_the_feed(backend: &dyn Backend) {
    let (s, d) = enrolled(backend);
    s.ingest_batch(&d, &[], Some(&beat(1)), Contact::with_interval(10, 3600))
        .unwrap();
    let changed = |cursor: &mut ChangeCursor| {
        let c = s.changes_since(Some(cursor)).unwrap();
        *cursor = c.cursor;
        c.devices
    };
    let mut cursor = s.changes_since(None).unwrap().cursor;
    // Ordinary windows of an online device: the same interval again, none,
    // a JSON heartbeat, a frame.
    s.ingest_batch(&d, &[], Some(&beat(2)), Contact::with_interval(20, 3600))
        .unwrap();
    s.ingest_batch(&d, &[], Some(&beat(3)), Contact::at(30))
        .unwrap();
    s.update_status(&d, &beat(4), &[], 40).unwrap();
    assert!(
        changed(&mut cursor).is_empty(),
        "a window repeating the interval is no change"
    );
    // The device moved to another link profile: its deadline moves.
    s.ingest_batch(&d, &[], Some(&beat(5)), Contact::with_interval(50, 60))
        .unwrap();
    assert_eq!(changed(&mut cursor), std::slice::from_ref(&d));
    s.ingest_batch(&d, &[], Some(&beat(6)), Contact::with_interval(60, 60))
        .unwrap();
    assert!(changed(&mut cursor).is_empty());
}

both_backends!(interval_is_stored, interval_changes_are_in_the_feed);
