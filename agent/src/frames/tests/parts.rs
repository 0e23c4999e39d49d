//! A configuration (or `Rekey`) larger than one answer, at a LoRaWAN EU868
//! DR0 budget (51 bytes): it arrives in parts over successive answers, the
//! device reporting its progress in every status, across lost downlinks, a
//! kill mid-transfer (the state is on disk) and over a carrier whose
//! answers come later; it is applied once, exactly as if it had come whole.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::super::parts::Reassembly;
use super::super::test_later::LaterCarrier;
use super::*;

/// LoRaWAN EU868 DR0.
const BUDGET: usize = 51;

/// A configuration message of a few hundred bytes that zlib cannot shrink
/// below one answer.
fn config_json() -> String {
    let mut x = 7u32;
    let noise: String = (0..300)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + ((x >> 16) % 26) as u8)
        })
        .collect();
    format!(
        r#"{{"device_id":"{DEVICE}","configuration":{{"heartbeat":{{"period_seconds":900}},"noise":"{noise}"}}}}"#
    )
}

fn parts_server(json: &str) -> TestServer {
    let mut server = TestServer::new(keys(1));
    server.down_budget = BUDGET;
    server.parts = true;
    server.config = Some(("v2".into(), json.to_owned(), true));
    server
}

fn progress(dir: &Path) -> Option<u32> {
    Reassembly::load(dir).progress().map(|p| p.offset)
}

#[test]
fn a_config_arrives_in_parts_across_lost_downlinks_and_a_kill_and_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let json = config_json();
    let mut server = parts_server(&json);
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..4).map(log).collect::<Vec<_>>());
    let mut state = FrameState::default();
    let mut carrier = FakeCarrier::new(&mut server, BUDGET);
    carrier.lose_down = [1, 2, 5].into();
    let first = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(first.config_updated.is_none(), "too big for one window");
    let had = progress(dir.path()).expect("a transfer in progress");
    assert!(had > 0);

    // Killed mid-window; restarted from disk.
    let at = carrier.transmissions;
    carrier.crash_at = Some(at);
    drop(q);
    let q2 = open_queue(dir.path());
    let mut state = FrameState::default();
    let run = catch_unwind(AssertUnwindSafe(|| {
        window(dir.path(), &q2, &mut carrier, &mut state, None)
    }));
    assert!(run.is_err(), "killed");
    let resumed = progress(dir.path()).expect("still in progress");
    assert!(resumed >= had, "kept across the kill");
    carrier.crash_at = None;
    let before = carrier.server.progress.len();
    drop(q2);
    let q = open_queue(dir.path());
    let mut state = FrameState::default();
    let mut updates = Vec::new();
    for _ in 0..40 {
        let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
        updates.extend(r.config_updated);
        if progress(dir.path()).is_none() {
            break;
        }
    }
    // The first status after the restart reported the persisted offset.
    assert_eq!(
        carrier.server.progress[before].map(|p| p.offset),
        Some(resumed)
    );
    assert_eq!(updates.len(), 1, "applied once");
    assert_eq!(updates[0].version, "v2");
    let stored = Desired::load(dir.path());
    assert_eq!(stored.version, "v2");
    let want: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored.message_json).unwrap(),
        want
    );
    assert_eq!(stored.heartbeat_period_seconds(), Some(900));
    // Every part after the first started where the previous status said.
    let server = &carrier.server;
    for (id, offset, _) in &server.parts_sent {
        assert!(
            *offset == 0
                || server
                    .progress
                    .contains(&Some(flotta_proto::frame::PartProgress {
                        id: *id,
                        offset: *offset
                    }))
        );
    }
    // Nothing more once applied: the status says v2, no progress.
    let sent = carrier.server.parts_sent.len();
    let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(r.config_updated.is_none());
    assert_eq!(carrier.server.parts_sent.len(), sent);
    assert_eq!(carrier.server.progress.last(), Some(&None));
    assert_eq!(
        carrier.server.statuses.last().map(|s| s.0.as_str()),
        Some("v2")
    );
    assert_stored(carrier.server, &logs);
}

#[test]
fn a_rekey_too_big_for_an_answer_arrives_in_parts_and_switches_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let mut server = TestServer::new(keys(1));
    server.down_budget = BUDGET;
    server.parts = true;
    server.rekey = Some(keys(2));
    let q = open_queue(dir.path());
    let mut state = FrameState::default();
    let mut carrier = FakeCarrier::new(&mut server, BUDGET);
    let mut epochs = Vec::new();
    for _ in 0..5 {
        let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
        epochs.extend(r.rekeyed_to_epoch);
    }
    assert_eq!(epochs, vec![2]);
    assert_eq!(
        frame_keys::load(dir.path()).unwrap().map(|k| k.epoch),
        Some(2)
    );
    assert!(carrier.server.parts_sent.len() >= 2);
    assert_eq!(carrier.server.fresh.last().map(|f| f.0), Some(2));
}

#[test]
fn over_a_carrier_whose_answers_come_later_the_config_still_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let json = config_json();
    let mut server = parts_server(&json);
    let q = open_queue(dir.path());
    let mut state = FrameState::default();
    let mut carrier = LaterCarrier::new(&mut server, BUDGET);
    carrier.lose_down = [2, 3].into();
    let mut updates = Vec::new();
    for _ in 0..60 {
        let r = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
        updates.extend(r.config_updated);
    }
    assert_eq!(updates.len(), 1, "applied once");
    assert_eq!(Desired::load(dir.path()).version, "v2");
    assert_eq!(progress(dir.path()), None);
}
