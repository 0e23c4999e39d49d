//! Property test: random append / read / ack / sync / restart sequences
//! against a simple in-memory model of the queue.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{open, small_config};
use flotta_agent::queue::Durability;
use flotta_proto::record::RecordClass;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        class: u8,
        len: usize,
        durable: bool,
    },
    AppendBatch {
        n: usize,
    },
    Read {
        max_records: usize,
        max_bytes: usize,
    },
    /// Acknowledge the first `k` records of the next read.
    Ack {
        k: usize,
    },
    /// Acknowledge beyond anything ever appended.
    AckTooFar,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0usize..64, any::<bool>()).prop_map(|(class, len, durable)| Op::Append { class, len, durable }),
        2 => (1usize..8).prop_map(|n| Op::AppendBatch { n }),
        3 => (1usize..20, 1usize..300).prop_map(|(max_records, max_bytes)| Op::Read { max_records, max_bytes }),
        3 => (0usize..12).prop_map(|k| Op::Ack { k }),
        1 => Just(Op::AckTooFar),
        1 => Just(Op::Restart),
    ]
}

fn class(c: u8) -> RecordClass {
    RecordClass::ALL[usize::from(c) % 3]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn queue_matches_model(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut q = open(dir.path(), small_config());
        // Model: unacknowledged (seq, class, payload) in order.
        let mut model: Vec<(u64, RecordClass, Vec<u8>)> = Vec::new();
        let mut last_seq: Option<u64> = None;
        for op in ops {
            match op {
                Op::Append { class: c, len, durable } => {
                    let payload = vec![len as u8; len];
                    let d = if durable { Durability::Durable } else { Durability::Buffered };
                    let seq = q.append(class(c), &payload, d).unwrap();
                    prop_assert!(last_seq.is_none_or(|l| seq > l), "seq {seq} after {last_seq:?}");
                    last_seq = Some(seq);
                    model.push((seq, class(c), payload));
                }
                Op::AppendBatch { n } => {
                    let payloads: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i]).collect();
                    let seqs = q.append_batch(payloads.iter().map(|p| (RecordClass::Log, p.as_slice()))).unwrap();
                    prop_assert_eq!(seqs.end - seqs.start, n as u64);
                    for (seq, p) in seqs.zip(payloads) {
                        prop_assert!(last_seq.is_none_or(|l| seq > l));
                        last_seq = Some(seq);
                        model.push((seq, RecordClass::Log, p));
                    }
                }
                Op::Read { max_records, max_bytes } => {
                    let got = q.read_batch(max_records, max_bytes).unwrap();
                    prop_assert!(got.len() <= max_records);
                    prop_assert!(got.len() <= 1 || got.iter().map(|r| r.payload.len()).sum::<usize>() <= max_bytes);
                    for (r, m) in got.iter().zip(&model) {
                        prop_assert_eq!((r.seq, r.class, &r.payload), (m.0, m.1, &m.2));
                    }
                    if !model.is_empty() {
                        prop_assert!(!got.is_empty(), "a waiting record must be returned");
                    }
                }
                Op::Ack { k } => {
                    let k = k.min(model.len());
                    if k > 0 {
                        let through = model[k - 1].0;
                        q.ack(through).unwrap();
                        model.drain(..k);
                        prop_assert_eq!(q.acked_through(), Some(through));
                    }
                }
                Op::AckTooFar => {
                    q.ack(u64::MAX).unwrap();
                    model.clear();
                }
                Op::Restart => {
                    drop(q);
                    q = open(dir.path(), small_config());
                    if let Some(l) = last_seq {
                        prop_assert!(q.next_seq() > l, "sequence went back after restart");
                    }
                }
            }
            prop_assert_eq!(q.stats().records, model.len() as u64);
        }
        let all = q.read_batch(usize::MAX, usize::MAX).unwrap();
        let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
        let expected: Vec<u64> = model.iter().map(|m| m.0).collect();
        prop_assert_eq!(seqs, expected);
        prop_assert_eq!(q.stats().damaged_bytes, 0);
    }
}

#[test]
fn acked_segments_are_deleted_and_sequence_survives_an_empty_queue() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(dir.path(), small_config());
    for i in 0..100u64 {
        q.append(
            RecordClass::Log,
            &common::payload_for(i),
            Durability::Buffered,
        )
        .unwrap();
    }
    q.sync().unwrap();
    let segments_before = q.stats().segments;
    assert!(
        segments_before > 5,
        "small segments should roll: {segments_before}"
    );
    q.ack(99).unwrap();
    assert_eq!(q.stats().segments, 1);
    assert_eq!(q.stats().records, 0);
    drop(q);
    let mut q = open(dir.path(), small_config());
    assert_eq!(q.next_seq(), 100);
    assert!(common::all_seqs(&mut q).is_empty());
    assert_eq!(
        q.append(RecordClass::Event, b"x", Durability::Durable)
            .unwrap(),
        100
    );
}

#[test]
fn group_commit_syncs_once_per_batch_and_buffered_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(dir.path(), small_config());
    let before = q.stats().fsyncs;
    let payloads: Vec<Vec<u8>> = (0..5).map(|i| vec![i; 8]).collect();
    q.append_batch(payloads.iter().map(|p| (RecordClass::Log, p.as_slice())))
        .unwrap();
    assert_eq!(q.stats().fsyncs - before, 1);
    q.append(RecordClass::Heartbeat, b"hb", Durability::Buffered)
        .unwrap();
    let due = q
        .sync_due_at_ms()
        .expect("a buffered record waits for its fsync");
    assert_eq!(due, 1_000_000 + 100);
    let before = q.stats().fsyncs;
    q.sync_if_due().unwrap();
    assert_eq!(q.stats().fsyncs, before, "not due yet");
}

#[test]
fn ensure_next_seq_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(dir.path(), small_config());
    q.append(RecordClass::Log, b"a", Durability::Durable)
        .unwrap();
    q.ensure_next_seq_at_least(5_000).unwrap();
    drop(q);
    let mut q = open(dir.path(), small_config());
    assert_eq!(q.next_seq(), 5_000);
    assert_eq!(common::all_seqs(&mut q), vec![0]);
}

#[test]
fn oversized_record_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(dir.path(), small_config());
    let err = q
        .append(RecordClass::Log, &[0; 65], Durability::Durable)
        .unwrap_err();
    assert!(!err.is_retriable());
    assert_eq!(q.next_seq(), 0);
    assert_eq!(q.stats().bytes, 0);
}
