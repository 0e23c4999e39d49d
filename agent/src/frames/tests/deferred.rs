//! Windows over a carrier whose answers come later (class A, `LaterCarrier`):
//! every record stored exactly once across lost uplinks, lost downlinks,
//! failed transmissions and restarts; one downlink per window; replayed
//! answers settle nothing; fragments broken by a lost frame are re-sent.

use std::collections::BTreeSet;

use super::super::test_later::LaterCarrier;
use super::*;

/// Every status's low water is at most its counter, counters are never
/// reused, re-packed records carry identical bytes.
fn assert_sound(server: &TestServer) {
    assert!(server.conflicts.is_empty(), "{:?}", server.conflicts);
    let unique: BTreeSet<_> = server.fresh.iter().collect();
    assert_eq!(unique.len(), server.fresh.len(), "a counter was reused");
    for ((_, counter, _), (_, low_water)) in server.seen.iter().zip(&server.statuses) {
        assert!(low_water <= counter);
        assert!(counter - low_water < 32, "span kept");
    }
}

fn ledger_len(dir: &Path) -> usize {
    let k = keys(1);
    super::super::ledger::Ledger::load(dir, k.key_id, k.epoch).len()
}

#[test]
fn records_travel_once_and_are_deleted_when_the_next_window_brings_the_ack() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..10).map(log).collect::<Vec<_>>());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 120);
    let first = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(first.frames >= 3, "{first:?}");
    assert_eq!((first.frames_acked, first.records_acked), (0, 0));
    assert_eq!(first.frames_in_flight, first.frames, "nothing answered yet");
    assert_eq!(queued(&q).len(), 10, "kept until acknowledged");
    // The next window: nothing to send but a status, which brings the ack.
    let second = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(second.frames, 1, "{second:?}");
    assert_eq!(second.frames_acked, first.frames);
    assert_eq!(second.records_acked, 10);
    assert!(queued(&q).is_empty());
    assert_stored(carrier.server, &logs);
    assert!(carrier.server.deliveries.values().all(|n| *n == 1));
    // Only the last frame of each window asked for an answer.
    let asked = carrier.server.wanted.iter().filter(|w| **w).count();
    assert_eq!(asked, 2, "{:?}", carrier.server.wanted);
    assert_eq!(carrier.downlinks(), 1, "one downlink per window");
    assert_sound(carrier.server);
}

#[test]
fn every_record_is_stored_once_across_loss_failures_and_restarts() {
    for seed in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        frame_keys::store(dir.path(), &keys(1)).unwrap();
        let mut server = TestServer::new(keys(1));
        // One network server for all windows: its pending answer survives.
        let mut carrier = LaterCarrier::new(&mut server, 51);
        let mut next = 0;
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut roll = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for w in 0..30 {
            // Each window a new process: state and queue reopened.
            let q = open_queue(dir.path());
            let mut batch = vec![heartbeat(50 + w as u8)];
            batch.extend((0..roll(6)).map(|i| log(w * 10 + i as usize)));
            if roll(4) == 0 {
                batch.push(event(90)); // fragmented at this budget
            }
            next = push(&q, &batch).last().unwrap().0 + 1;
            let quiet = w >= 26; // the network recovers at the end
            let base = carrier.uplinks;
            carrier.lose_up.clear();
            carrier.lose_down.clear();
            carrier.fail.clear();
            for i in base..base + 40 {
                if !quiet && roll(5) == 0 {
                    carrier.lose_up.insert(i);
                }
                if !quiet && roll(4) == 0 {
                    carrier.lose_down.insert(i);
                }
                if !quiet && roll(12) == 0 {
                    carrier.fail.insert(i);
                }
            }
            let mut state = FrameState::default();
            let _ = window(dir.path(), &q, &mut carrier, &mut state, None);
        }
        // Two quiet windows with nothing new: the first brings the answer
        // to the last lossy window and sends what it found lost again, the
        // second brings the answer to that.
        let q = open_queue(dir.path());
        carrier.lose_up.clear();
        carrier.lose_down.clear();
        carrier.fail.clear();
        for _ in 0..2 {
            window(
                dir.path(),
                &q,
                &mut carrier,
                &mut FrameState::default(),
                None,
            )
            .unwrap();
        }
        drop(carrier);
        assert!(queued(&q).is_empty(), "seed {seed}: left {:?}", queued(&q));
        assert_eq!(ledger_len(dir.path()), 1, "the last window's frame");
        assert_every_record_once(&server, next);
        assert!(
            server.deliveries.values().all(|n| *n >= 1),
            "seed {seed}: {:?}",
            server.deliveries
        );
        assert_sound(&server);
    }
}

#[test]
fn a_replayed_answer_settles_nothing_and_rolls_no_configuration_back() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    push(&q, &[log(1)]);
    let mut server = TestServer::new(keys(1));
    server.config = Some(("v1".into(), r#"{"configuration":{}}"#.into(), false));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 120);
    window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(r.config_updated.map(|d| d.version), Some("v1".into()));
    let old = carrier.delivered[0].clone();
    carrier.server.config = Some(("v2".into(), r#"{"configuration":{}}"#.into(), false));
    push(&q, &[log(2)]);
    window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(r.config_updated.map(|d| d.version), Some("v2".into()));
    // An attacker replays the v1 answer with every later uplink.
    carrier.inject = vec![old];
    push(&q, &[log(3)]);
    let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    let r2 = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(r.answers_ignored >= 1 && r2.answers_ignored >= 1);
    for r in [r, r2] {
        assert!(
            r.config_updated.as_ref().is_none_or(|d| d.version == "v2"),
            "{r:?}"
        );
    }
    assert_eq!(Desired::load(dir.path()).version, "v2");
    assert!(queued(&q).is_empty());
}

#[test]
fn a_fragmented_record_with_a_lost_piece_is_sent_again_whole() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let big = push(&q, &[event(200)]);
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 51);
    carrier.lose_up = [1].into(); // the second piece
    let first = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(first.frames >= 4, "{first:?}");
    assert!(!carrier.server.records.contains_key(&big[0].0));
    // The next window learns of the loss with its first frame, and sends
    // the record again in the one after.
    let second = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(second.frames_lost, 1, "{second:?}");
    assert_eq!(queued(&q).len(), 1);
    for _ in 0..2 {
        window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    }
    assert_stored(carrier.server, &big);
    assert!(queued(&q).is_empty());
    assert_sound(carrier.server);
}

#[test]
fn without_any_downlink_the_device_stays_within_the_span_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 51);
    carrier.lose_down = (0..100_000).collect();
    let mut pushed = Vec::new();
    for w in 0..12 {
        pushed.extend(push(
            &q,
            &(0..4).map(|i| log(w * 4 + i)).collect::<Vec<_>>(),
        ));
        window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    }
    assert_eq!(queued(&q).len(), 48, "nothing deleted without an ack");
    assert!(ledger_len(dir.path()) <= 32);
    carrier.lose_down.clear();
    for _ in 0..4 {
        window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    }
    assert!(queued(&q).is_empty());
    assert_stored(carrier.server, &pushed);
    assert_sound(carrier.server);
}

#[test]
fn without_downlink_budget_nothing_asks_and_a_full_ledger_holds_back() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 51);
    carrier.may_ask = false;
    let pushed = push(&q, &(0..40).map(log).collect::<Vec<_>>());
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.held_back_by, Some("fair_use_downlinks"));
    assert!(carrier.server.wanted.iter().all(|w| !w), "nothing asked");
    assert_eq!(carrier.downlinks(), 0);
    assert_eq!(ledger_len(dir.path()), 31, "full, nothing given up");
    let sent = carrier.uplinks;
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.held_back_by, Some("fair_use_downlinks"));
    assert_eq!(carrier.uplinks, sent, "held back: nothing sent again");
    // The budget comes back: the next window asks, the one after settles.
    carrier.may_ask = true;
    for _ in 0..4 {
        let _ = window(dir.path(), &q, &mut carrier, &mut state, None);
    }
    assert!(queued(&q).is_empty(), "{:?}", queued(&q));
    assert_stored(carrier.server, &pushed);
    assert_sound(carrier.server);
}

#[test]
fn a_frame_held_back_before_transmission_is_not_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 120);
    let pushed = push(&q, &(0..2).map(log).collect::<Vec<_>>());
    carrier.hold = [0].into();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.held_back_by, Some("duty_cycle"), "{report:?}");
    assert_eq!(report.frames, 0);
    assert_eq!(ledger_len(dir.path()), 0, "nothing went on air");
    // The next window sends the records at once (not after an ack showed
    // a phantom frame lost), and the one after settles them.
    window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_stored(carrier.server, &pushed);
    window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(queued(&q).is_empty());
}

#[test]
fn a_window_the_budget_cuts_short_asks_on_its_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 51);
    let pushed = push(&q, &(0..30).map(log).collect::<Vec<_>>());
    carrier.allowed = Some(4);
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.held_back_by, Some("duty_cycle"));
    assert_eq!(report.frames, 4);
    assert_eq!(
        carrier.server.wanted,
        [false, false, false, true],
        "the last frame the budget allowed asks for the answer"
    );
    // Each later window gets four uplinks: the first brings the answer to
    // the last window's frames, which are settled; everything arrives.
    for _ in 0..40 {
        if queued(&q).is_empty() {
            break;
        }
        carrier.allowed = Some(4);
        window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    }
    assert!(queued(&q).is_empty(), "{:?}", queued(&q));
    assert_stored(carrier.server, &pushed);
    assert_sound(carrier.server);
}

#[test]
fn a_window_with_its_budget_spent_plans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, 51);
    carrier.allowed = Some(0);
    push(&q, &[heartbeat(90), heartbeat(89), log(1)]);
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.held_back_by, Some("duty_cycle"));
    assert_eq!((report.frames, carrier.uplinks), (0, 0));
    assert!(
        !dir.path().join("frame/folds.bin").exists(),
        "a window that could send nothing made a heartbeat group"
    );
    // The budget back: both heartbeats go in one summary.
    carrier.allowed = None;
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.heartbeats_folded, 2, "{report:?}");
}

#[test]
fn a_window_asks_for_one_answer_whatever_its_records_sizes() {
    // At 51-byte frames some record sizes fill the last frame exactly:
    // the status's ack flag (one more byte) would push the record into a
    // frame of its own that asks again: two downlinks for one window.
    for len in 1..80 {
        let dir = tempfile::tempdir().unwrap();
        frame_keys::store(dir.path(), &keys(1)).unwrap();
        let q = open_queue(dir.path());
        push(&q, &[event(len)]);
        let mut server = TestServer::new(keys(1));
        let mut state = FrameState::default();
        let mut carrier = LaterCarrier::new(&mut server, 51);
        let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
        let asked = carrier.server.wanted.iter().filter(|w| **w).count();
        assert_eq!(
            asked, 1,
            "an event of {len} bytes: {} frames, asks {:?}",
            report.frames, carrier.server.wanted
        );
        assert_eq!(
            carrier.server.wanted.last(),
            Some(&true),
            "the last frame asks"
        );
    }
}
