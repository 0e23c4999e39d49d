//! Tests of the in-flight ledger: resolution against the real replay
//! window's acks, fragments broken by a lost frame, the span rule,
//! persistence, and a property test over lossy exchanges.

use std::collections::{BTreeMap, BTreeSet};

use flotta_proto::frame::{ReplayWindow, Verdict};
use proptest::prelude::*;

use super::*;

fn whole(covers: &[u64]) -> Part {
    Part {
        covers: covers.to_vec(),
        ends: true,
        broken: false,
    }
}

fn piece(covers: &[u64]) -> Part {
    Part {
        ends: false,
        ..whole(covers)
    }
}

/// A server: the replay window of what it stored.
#[derive(Default)]
struct Server {
    window: ReplayWindow,
    stored: BTreeSet<u32>,
}

impl Server {
    fn receive(&mut self, counter: u32) {
        if self.window.check(counter) == Verdict::Fresh {
            self.window.mark(counter);
            self.stored.insert(counter);
        }
    }
}

#[test]
fn an_ack_delivers_whole_records_and_reveals_lost_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    let mut server = Server::default();
    l.push(0, 1, vec![whole(&[1])]);
    server.receive(0);
    l.push(1, 2, vec![whole(&[2])]); // lost
    l.push(2, 3, vec![whole(&[3, 4])]);
    server.receive(2);
    assert_eq!(l.in_flight(), BTreeSet::from([1, 2, 3, 4]));
    assert_eq!(l.low_water(3), 0);
    let ack = server.window.ack(l.low_water(3));
    let res = l.resolve(&ack, 0).expect("fresh");
    assert_eq!(res.delivered, vec![1, 3, 4]);
    assert_eq!((res.acked_frames, res.lost_frames), (2, 1));
    assert_eq!(l.len(), 0);
    assert!(l.in_flight().is_empty());
}

#[test]
fn a_stale_or_replayed_answer_is_not_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    let mut server = Server::default();
    l.push(0, 1, vec![whole(&[1])]);
    server.receive(0);
    let first = server.window.ack(0);
    assert!(l.resolve(&first, 5).is_some());
    l.push(1, 2, vec![whole(&[2])]);
    // The same answer again (a replay), and an older downlink counter.
    assert_eq!(l.resolve(&first, 5), None);
    server.receive(1);
    assert_eq!(l.resolve(&server.window.ack(1), 4), None);
    assert_eq!(l.len(), 1, "nothing settled by a stale answer");
    // An answer that acknowledges nothing in flight is not fresh either.
    assert_eq!(l.resolve(&first, 9), None);
    assert!(l.resolve(&server.window.ack(1), 6).is_some());
}

#[test]
fn frames_after_the_highest_acked_counter_stay_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    let mut server = Server::default();
    l.push(0, 1, vec![whole(&[1])]);
    server.receive(0);
    let ack = server.window.ack(0);
    l.push(1, 2, vec![whole(&[2])]); // sent after the answer was computed
    let res = l.resolve(&ack, 0).unwrap();
    assert_eq!(res.delivered, vec![1]);
    assert_eq!(res.lost_frames, 0);
    assert_eq!(l.in_flight(), BTreeSet::from([2]));
}

#[test]
fn a_lost_fragment_breaks_the_record_even_when_its_last_frame_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    let mut server = Server::default();
    l.push(0, 1, vec![piece(&[10])]); // lost
    l.push(1, 2, vec![piece(&[10])]);
    server.receive(1);
    l.push(2, 3, vec![whole(&[10]), whole(&[11])]);
    server.receive(2);
    let res = l.resolve(&server.window.ack(0), 1).unwrap();
    assert_eq!(res.delivered, vec![11]);
    assert_eq!(res.lost_frames, 1);
}

#[test]
fn a_fragment_given_up_breaks_its_record_in_later_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    l.push(0, 1, vec![piece(&[10])]);
    l.push(40, 2, vec![whole(&[10])]);
    let res = l.give_up_below(41);
    assert_eq!(res.lost_frames, 1);
    let mut server = Server::default();
    server.receive(40);
    let res = l.resolve(&server.window.ack(40), 0).unwrap();
    assert!(res.delivered.is_empty(), "its first fragment was given up");
}

#[test]
fn entries_too_far_below_the_new_counter_are_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    for c in 0..10 {
        l.push(c, u64::from(c), vec![whole(&[u64::from(c)])]);
    }
    assert_eq!(l.give_up_below(MAX_SPAN).lost_frames, 1);
    assert_eq!(l.low_water(MAX_SPAN), 1);
    assert_eq!(l.give_up_below(MAX_SPAN + 5).lost_frames, 5);
    assert_eq!(l.in_flight(), (6..10).collect());
}

#[test]
fn the_ledger_survives_a_restart_and_is_dropped_for_another_context() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    l.push(3, 1, vec![whole(&[1]), piece(&[2])]);
    let ack = Ack {
        below: 0,
        bitmap: 0,
    };
    assert_eq!(l.resolve(&ack, 0), None);
    l.save().unwrap();
    let again = Ledger::load(dir.path(), [7; 4], 0);
    assert_eq!(again.in_flight(), BTreeSet::from([1, 2]));
    let other = Ledger::load(dir.path(), [7; 4], 1);
    assert_eq!(other.len(), 0);
}

#[test]
fn the_highest_downlink_counter_is_remembered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    let mut server = Server::default();
    l.push(0, 1, vec![whole(&[1])]);
    server.receive(0);
    let old = server.window.ack(0);
    l.resolve(&old, 9).unwrap();
    l.save().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    l.push(1, 2, vec![whole(&[2])]);
    server.receive(1);
    assert_eq!(l.resolve(&server.window.ack(1), 9), None, "replay of 9");
    assert!(l.resolve(&server.window.ack(1), 10).is_some());
}

#[test]
fn a_damaged_file_is_an_empty_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    l.push(3, 1, vec![whole(&[1])]);
    l.save().unwrap();
    let path = dir.path().join(LEDGER_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Ledger::load(dir.path(), [7; 4], 0).len(), 0);
    assert!(!decode_file(&bytes));
}

proptest! {
    /// Records split into 1–3 frames each, every frame lost with some
    /// probability, answers computed by a real replay window after random
    /// frames and themselves lost at random; the device gives up entries
    /// beyond the span. Whatever happens: a record is delivered only if
    /// every frame carrying a piece of it was stored, never twice, and once
    /// a final answer settles everything, every record is either delivered
    /// or free to be re-planned (not in flight).
    #[test]
    fn delivered_means_every_piece_stored(
        pieces in prop::collection::vec(1usize..4, 1..40),
        lost in prop::collection::vec(any::<bool>(), 120),
        answers in prop::collection::vec(0u8..4, 120),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::load(dir.path(), [1; 4], 0);
        let mut server = Server::default();
        let mut frames_of: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        let mut delivered = BTreeSet::new();
        let mut counter = 0u32;
        let mut down = 0u32;
        let settle = |l: &mut Ledger, server: &Server, counter: u32, down: &mut u32,
                          delivered: &mut BTreeSet<u64>, frames_of: &BTreeMap<u64, Vec<u32>>| {
            *down += 1;
            if let Some(res) = l.resolve(&server.window.ack(l.low_water(counter)), *down) {
                for seq in res.delivered {
                    prop_assert!(delivered.insert(seq), "record {} delivered twice", seq);
                    let all_stored = frames_of[&seq].iter().all(|c| server.stored.contains(c));
                    prop_assert!(all_stored, "record {} delivered with a piece lost", seq);
                }
            }
            Ok(())
        };
        for (seq, &n) in pieces.iter().enumerate() {
            let seq = seq as u64;
            for i in 0..n {
                l.give_up_below(counter);
                let part = if i + 1 == n { whole(&[seq]) } else { piece(&[seq]) };
                l.push(counter, 0, vec![part]);
                frames_of.entry(seq).or_default().push(counter);
                let k = counter as usize % lost.len();
                if !lost[k] {
                    server.receive(counter);
                    if answers[k] == 0 {
                        settle(&mut l, &server, counter, &mut down, &mut delivered, &frames_of)?;
                    }
                }
                counter += 1;
            }
        }
        // A last frame that arrives, and its answer.
        l.give_up_below(counter);
        l.push(counter, 0, Vec::new());
        server.receive(counter);
        settle(&mut l, &server, counter, &mut down, &mut delivered, &frames_of)?;
        prop_assert_eq!(l.len(), 0);
        prop_assert!(l.in_flight().is_empty());
    }
}

#[test]
fn delivered_records_held_back_are_remembered_until_the_queue_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    l.note_delivered(&[9, 5, 7], Some(4));
    l.save().unwrap();
    let mut l = Ledger::load(dir.path(), [7; 4], 0);
    assert_eq!(l.delivered(), [5, 7, 9]);
    l.note_delivered(&[7, 11], Some(7));
    assert_eq!(l.delivered(), [9, 11]);
    l.note_delivered(&(100..100 + MAX_DELIVERED as u64).collect::<Vec<_>>(), None);
    assert_eq!(l.delivered().len(), MAX_DELIVERED);
    assert_eq!(l.delivered()[0], 100, "the lowest dropped first");
}
