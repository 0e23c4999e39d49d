//! Link statistics (`link_days.rs`) on both backends: upserts add up, days
//! and links are separate rows, a read starts at a day, batches and frames
//! write theirs in their own transaction (a refused frame writes none), a
//! purge deletes them, retention deletes days before a day in chunks.
#![allow(clippy::unwrap_used)]

use super::test_backends::{Backend, both_backends};
use super::*;

const DAY_MS: u64 = 86_400_000;
/// 2024-03-01T00:00:00Z.
const MAR_1: u64 = 1_709_251_200_000;

fn enrolled(backend: &dyn Backend) -> (Box<dyn Store>, DeviceId) {
    let s = backend.open();
    let d = DeviceId::parse("dev-1").unwrap();
    s.enrol(&d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
    (s, d)
}

fn usage(windows: u64, bytes_up: u64, bytes_down: u64) -> LinkUsage {
    LinkUsage {
        windows,
        tls_full: windows,
        bytes_up,
        bytes_down,
        ..LinkUsage::default()
    }
}

fn day(s: &dyn Store, d: &DeviceId, day: &str, link: &str) -> Option<LinkUsage> {
    s.link_days(d, day)
        .unwrap()
        .into_iter()
        .find(|r| r.day == day && r.link == link)
        .map(|r| r.usage)
}

fn upserts_add_up_by_day_and_link(backend: &dyn Backend) {
    let (s, d) = enrolled(backend);
    assert_eq!(utc_day(MAR_1 + 5), "2024-03-01");
    s.add_link_usage(&d, "tls", &usage(1, 100, 40), MAR_1 + 5)
        .unwrap();
    s.add_link_usage(&d, "tls", &usage(1, 50, 10), MAR_1 + DAY_MS - 1)
        .unwrap();
    s.add_link_usage(&d, "udp", &usage(0, 7, 3), MAR_1 + 9)
        .unwrap();
    s.add_link_usage(&d, "tls", &usage(1, 1, 1), MAR_1 + DAY_MS)
        .unwrap();
    // Nothing to count writes no row.
    s.add_link_usage(&d, "sbd", &LinkUsage::default(), MAR_1)
        .unwrap();
    let rows = s.link_days(&d, "2024-03-01").unwrap();
    let keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.day.as_str(), r.link.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("2024-03-01", "tls"),
            ("2024-03-01", "udp"),
            ("2024-03-02", "tls")
        ]
    );
    assert_eq!(rows[0].usage, usage(2, 150, 50));
    assert_eq!(rows[1].usage, usage(0, 7, 3));
    assert_eq!(rows[2].usage, usage(1, 1, 1));
    // A read since a later day leaves the earlier ones out.
    let later = s.link_days(&d, "2024-03-02").unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].day, "2024-03-02");
    // Another device's rows are its own.
    let other = DeviceId::parse("dev-2").unwrap();
    assert!(s.link_days(&other, "2024-01-01").unwrap().is_empty());
}

fn batches_and_frames_count_in_their_transaction(backend: &dyn Backend) {
    let (s, d) = enrolled(backend);
    let contact = Contact {
        usage: LinkUsage {
            windows: 1,
            tls_resumed: 1,
            bytes_up: 300,
            bytes_down: 20,
            ..LinkUsage::default()
        },
        ..Contact::at(MAR_1 + 10)
    };
    s.ingest_batch(&d, &[], None, contact).unwrap();
    let tls = day(&*s, &d, "2024-03-01", "tls").unwrap();
    assert_eq!((tls.windows, tls.tls_full, tls.tls_resumed), (1, 0, 1));
    assert_eq!((tls.bytes_up, tls.bytes_down), (300, 20));

    s.create_frame_context(&d, &super::frame_tests::keys([1, 2, 3, 4]), 2)
        .unwrap();
    let counted = |counter| FrameWrite {
        usage: LinkUsage {
            frames: 1,
            bytes_up: 60,
            bytes_down: 30,
            ..LinkUsage::default()
        },
        ..super::frame_tests::frame(counter, Vec::new(), Vec::new())
    };
    s.ingest_frame(&counted(1), MAR_1 + 20).unwrap();
    // A duplicate is received too: counted.
    let dup = s.ingest_frame(&counted(1), MAR_1 + 30).unwrap();
    assert_eq!(dup.verdict, FrameVerdict::Duplicate);
    let udp = day(&*s, &d, "2024-03-01", "udp").unwrap();
    assert_eq!((udp.frames, udp.bytes_up, udp.bytes_down), (2, 120, 60));
    assert_eq!(udp.windows, 0);
    // A frame of an unknown key id writes nothing.
    let unknown = FrameWrite {
        key_id: [9, 9, 9, 9],
        ..counted(2)
    };
    let r = s.ingest_frame(&unknown, MAR_1 + 40).unwrap();
    assert_eq!(r.verdict, FrameVerdict::UnknownContext);
    assert_eq!(day(&*s, &d, "2024-03-01", "udp").unwrap().frames, 2);
}

fn a_purge_deletes_them(backend: &dyn Backend) {
    let (s, d) = enrolled(backend);
    s.add_link_usage(&d, "tls", &usage(1, 1, 1), MAR_1).unwrap();
    let event = JsonEvent {
        at_ms: 5,
        index: 0,
        payload: vec![1],
    };
    // Decommissioning without a purge keeps the history.
    s.decommission(&d, "op", false, &event, MAR_1 + 1).unwrap();
    assert_eq!(s.link_days(&d, "2024-01-01").unwrap().len(), 1);
    s.decommission(&d, "op", true, &event, MAR_1 + 2).unwrap();
    assert!(s.link_days(&d, "2024-01-01").unwrap().is_empty());
}

fn retention_deletes_days_before_one_in_chunks(backend: &dyn Backend) {
    let (s, d) = enrolled(backend);
    for n in 0..5 {
        s.add_link_usage(&d, "tls", &usage(1, 1, 1), MAR_1 + n * DAY_MS)
            .unwrap();
        s.add_link_usage(&d, "udp", &usage(0, 1, 1), MAR_1 + n * DAY_MS)
            .unwrap();
    }
    // Days 1..3 (six rows) are before 2024-03-04; chunks of four.
    assert_eq!(s.delete_expired_link_days("2024-03-04", 4).unwrap(), 4);
    assert_eq!(s.delete_expired_link_days("2024-03-04", 4).unwrap(), 2);
    assert_eq!(s.delete_expired_link_days("2024-03-04", 4).unwrap(), 0);
    let days: Vec<String> = s
        .link_days(&d, "2024-01-01")
        .unwrap()
        .into_iter()
        .map(|r| r.day)
        .collect();
    assert_eq!(
        days,
        ["2024-03-04", "2024-03-04", "2024-03-05", "2024-03-05"]
    );
}

both_backends!(
    upserts_add_up_by_day_and_link,
    batches_and_frames_count_in_their_transaction,
    a_purge_deletes_them,
    retention_deletes_days_before_one_in_chunks
);
