//! Delivery across a lossy, hostile network: every record exactly once,
//! retransmissions byte for byte, forged and late answers skipped,
//! fragments, and a window that ends when a frame goes unanswered.

use flotta_proto::frame::{Ack, DownItem, FrameContext, FrameType, ItemWriter, KeyId, Role, seal};
use flotta_proto::payload::Payload;

use super::*;

#[test]
fn every_record_is_delivered_once_across_lost_datagrams_and_heartbeats_fold() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let hbs = push(&q, &[heartbeat(90), heartbeat(70)]);
    let logs = push(&q, &(0..30).map(log).collect::<Vec<_>>());
    let last_hb = push(&q, &[heartbeat(80)]);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    carrier.lose_up = [0, 3, 7, 8].into();
    carrier.lose_down = [1, 5, 11].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.records_acked, 33);
    assert_eq!(report.heartbeats_folded, 3);
    assert!(report.frames > 3, "{report:?}");
    assert_eq!(report.traffic.sent, carrier.transmissions as u64);
    assert!(queued(&q).is_empty());
    assert_stored(&server, &logs);
    // The summary, under the last heartbeat, first of all.
    let (summary_seq, _) = last_hb[0];
    let (_, class, bytes) = &server.records[&summary_seq];
    assert_eq!(*class, 0);
    let Ok(Payload::Summary(s)) = Payload::decode(bytes) else {
        panic!("not a summary")
    };
    assert_eq!((s.heartbeats, s.first_seq), (3, hbs[0].0));
    assert_eq!(
        (s.battery_min_percent, s.battery_max_percent),
        (Some(70), Some(90))
    );
    assert_eq!(server.records.len(), 31, "30 logs and one summary");
    assert!(
        server.deliveries.values().all(|n| *n == 1),
        "{:?}",
        server.deliveries
    );
    assert_eq!(server.seen[0].1, 0);
    assert_counters_sound(&server);
}

#[test]
fn forged_duplicated_and_late_answers_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..12).map(log).collect::<Vec<_>>());
    // An attacker knows the key id (it is on the wire) but not the secret:
    // an answer that acks everything, sealed under its own guess.
    let k = keys(1);
    let forger = FrameContext::new(
        Role::Server,
        KeyId(k.key_id),
        1,
        &[0x99; 32],
        &k.master_salt,
        DEVICE.as_bytes(),
    )
    .unwrap();
    let mut plain = [0u8; 32];
    let mut w = ItemWriter::new(&mut plain);
    w.push(&DownItem::Ack(Ack {
        below: 1 << 24,
        bitmap: 0,
    }))
    .unwrap();
    let len = w.len();
    let mut forged = vec![0u8; 64];
    let n = seal(
        &forger,
        FrameType::DownlinkAnswer,
        0,
        false,
        &plain[..len],
        &mut forged,
    )
    .unwrap();
    forged.truncate(n);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 160);
    carrier.inject = vec![forged, vec![0x20; 40], Vec::new()];
    carrier.replay_old_answers = true;
    carrier.lose_down = [2].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(
        report.traffic.ignored >= 3 * u64::from(report.frames),
        "{report:?}"
    );
    assert!(queued(&q).is_empty());
    assert_stored(&server, &logs);
    assert!(server.deliveries.values().all(|n| *n == 1));
    assert_counters_sound(&server);
}

#[test]
fn a_record_larger_than_a_frame_goes_in_fragments() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let recs = push(&q, &[log(1), event(5000), log(2)]);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 300);
    carrier.lose_up = [4].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(report.frames >= 5000 / 284, "{report:?}");
    assert_eq!((report.records_acked, report.left_for_tls), (3, 0));
    assert_stored(&server, &recs);
    assert!(queued(&q).is_empty());
    assert_counters_sound(&server);
}

#[test]
fn an_unanswered_frame_ends_the_window_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..10).map(log).collect::<Vec<_>>());
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    carrier.lose_up = (1..4).collect(); // the second frame, every attempt
    let mut state = FrameState::default();
    let err = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap_err();
    assert!(
        err.is_retriable() && err.to_string().starts_with("fake: no answer"),
        "{err}"
    );
    let left = queued(&q);
    assert!(!left.is_empty() && left.len() < 10, "{left:?}");
    let mut carrier = FakeCarrier::new(&mut server, 200);
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.records_acked, left.len() as u64);
    assert_stored(&server, &logs);
    assert_counters_sound(&server);
}

#[test]
fn an_empty_queue_still_sends_one_status_frame() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    let report = window(
        dir.path(),
        &q,
        &mut carrier,
        &mut FrameState::default(),
        None,
    )
    .unwrap();
    assert_eq!(
        (report.frames, report.records_acked, report.traffic.sent),
        (1, 0, 1)
    );
    assert_eq!(report.carrier, "fake");
    assert!(report.traffic.bytes_up > 16 && report.traffic.bytes_down > 12);
}
