//! Unit tests of the sealed-frame store: the one transaction of a frame
//! (all or nothing, a failure half-way stores and marks nothing), replay
//! verdicts, fragments persisted across a reopen, epochs, downlink counter
//! reservations and revocation.

use std::num::NonZeroU32;
use std::sync::Arc;

use flotta_proto::frame::CounterReserver;
use flotta_proto::frame_keys::FrameKeys;
use flotta_proto::payload::{Level, LogLine, Payload};
use flotta_proto::record::RecordClass;

use super::test_backends::{Backend, both_backends};
use super::*;
use crate::frames::counter::StoreCounter;
use crate::frames::reassembly::{FragmentLimits, NewFragment, Refusal};

const LIMITS: FragmentLimits = FragmentLimits {
    max_record_bytes: 4096,
    max_pending_bytes: 8192,
};

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

/// Frame keys with id `key_id` (also for `contact_tests.rs`).
pub(super) fn keys(key_id: [u8; 4]) -> FrameKeys {
    FrameKeys {
        key_id,
        epoch: 0,
        master_secret: [3; 32],
        master_salt: vec![4; 8],
    }
}

fn setup(backend: &dyn Backend) -> (Box<dyn Store>, DeviceId) {
    let store = backend.open();
    let d = id("dev-1");
    let ns = Namespace::parse("default").unwrap();
    store.enrol(&d, &ns, None, true, 1).unwrap();
    store
        .create_frame_context(&d, &keys([1, 2, 3, 4]), 10)
        .unwrap();
    (store, d)
}

fn log_bytes(text: &str) -> Vec<u8> {
    Payload::Log(LogLine {
        source: "agent".into(),
        level: Level::Info,
        message: text.into(),
    })
    .encode()
}

fn record(seq: u64) -> NewRecord {
    NewRecord {
        seq,
        at_ms: 100 + seq,
        class: RecordClass::Log,
        payload: log_bytes(&format!("record {seq}")),
    }
}

fn fragment(seq: u64, whole: &[u8], offset: usize, len: usize) -> NewFragment {
    NewFragment {
        seq,
        at_ms: 100 + seq,
        class: RecordClass::Log,
        total_len: u32::try_from(whole.len()).unwrap(),
        offset: u32::try_from(offset).unwrap(),
        data: whole[offset..offset + len].to_vec(),
    }
}

/// A frame on the context of `keys([1, 2, 3, 4])` (also for `contact_tests.rs`).
pub(super) fn frame(
    counter: u32,
    records: Vec<NewRecord>,
    fragments: Vec<NewFragment>,
) -> FrameWrite {
    FrameWrite {
        key_id: [1, 2, 3, 4],
        epoch: 0,
        counter,
        records,
        status: None,
        fragments,
        limits: LIMITS,
        earlier_duplicates: 0,
        link: "udp",
        sbd: None,
        lorawan: None,
        usage: Default::default(),
    }
}

fn seqs(s: &dyn Store, d: &DeviceId) -> Vec<u64> {
    s.records(d, None, 100)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect()
}

fn window(s: &dyn Store) -> Option<(u32, u64)> {
    s.frame_contexts_by_key([1, 2, 3, 4]).unwrap()[0].window
}

fn a_frame_is_stored_once_and_its_counter_judged(backend: &dyn Backend) {
    let (s, d) = setup(backend);
    let f = frame(5, vec![record(1), record(2)], vec![]);
    let out = s.ingest_frame(&f, 1000).unwrap();
    assert_eq!(out.verdict, FrameVerdict::Stored { completed: vec![] });
    assert_eq!(out.window, Some((5, 1)));
    assert_eq!(seqs(&*s, &d), vec![1, 2]);
    assert_eq!(
        s.ingest_frame(&f, 1001).unwrap().verdict,
        FrameVerdict::Duplicate
    );
    assert_eq!(seqs(&*s, &d), vec![1, 2]);
    // Records already stored (a re-packed frame) are deduplicated by seq.
    let again = frame(70, vec![record(2), record(3)], vec![]);
    assert!(matches!(
        s.ingest_frame(&again, 1002).unwrap().verdict,
        FrameVerdict::Stored { .. }
    ));
    assert_eq!(seqs(&*s, &d), vec![1, 2, 3]);
    assert_eq!(
        s.ingest_frame(&f, 1003).unwrap().verdict,
        FrameVerdict::TooOld
    );
    let link = s.frame_link_status(&d).unwrap();
    assert_eq!(
        (
            link.last_link.as_deref(),
            link.frames_stored,
            link.frames_duplicate,
            link.highest_uplink_counter
        ),
        (Some("udp"), 2, 1, Some(70))
    );
    assert_eq!(s.device(&d).unwrap().unwrap().last_seen_ms, Some(1002));
    // Unknown epoch or key id: nothing.
    let mut other = frame(1, vec![record(9)], vec![]);
    other.epoch = 1;
    assert_eq!(
        s.ingest_frame(&other, 1).unwrap().verdict,
        FrameVerdict::UnknownContext
    );
    other.key_id = [9; 4];
    let out = s.ingest_frame(&other, 1).unwrap();
    assert_eq!(
        (out.verdict, out.newest),
        (FrameVerdict::UnknownContext, None)
    );
    assert_eq!(seqs(&*s, &d), vec![1, 2, 3]);
}

#[test]
fn a_crash_half_way_stores_nothing_and_marks_nothing() {
    // SQLite only: the crash is a trigger in SQLite's syntax.
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
    let d = id("dev-1");
    let ns = Namespace::parse("default").unwrap();
    s.enrol(&d, &ns, None, true, 1).unwrap();
    s.create_frame_context(&d, &keys([1, 2, 3, 4]), 10).unwrap();
    // The last write of the transaction (the window) fails, as a crash
    // before the commit would leave it.
    s.execute_batch_for_tests(
        "CREATE TRIGGER crash BEFORE UPDATE OF up_highest ON frame_contexts
         BEGIN SELECT RAISE(ABORT, 'simulated crash'); END;",
    )
    .unwrap();
    let whole = log_bytes("fragmented record of some length");
    let f = frame(3, vec![record(1)], vec![fragment(2, &whole, 0, 10)]);
    assert!(s.ingest_frame(&f, 1000).is_err());
    assert!(seqs(&s, &d).is_empty());
    assert_eq!(window(&s), None);
    let link = s.frame_link_status(&d).unwrap();
    assert_eq!((link.frames_stored, link.last_link), (0, None));
    assert_eq!(s.device(&d).unwrap().unwrap().last_seen_ms, None);
    // The device sends the same frame again: stored then.
    s.execute_batch_for_tests("DROP TRIGGER crash").unwrap();
    assert!(matches!(
        s.ingest_frame(&f, 1001).unwrap().verdict,
        FrameVerdict::Stored { .. }
    ));
    assert_eq!(seqs(&s, &d), vec![1]);
    assert_eq!(window(&s), Some((3, 1)));
}

fn fragments_survive_a_reopen_and_complete_a_record(backend: &dyn Backend) {
    let (s, d) = setup(backend);
    let whole = log_bytes("a record too long for one frame, in three pieces");
    let n = whole.len();
    s.ingest_frame(&frame(0, vec![], vec![fragment(7, &whole, 0, 12)]), 1)
        .unwrap();
    s.ingest_frame(&frame(1, vec![], vec![fragment(7, &whole, n - 5, 5)]), 2)
        .unwrap();
    drop(s);
    let s = backend.open();
    assert!(seqs(&*s, &d).is_empty());
    // The middle, overlapping both ends (they agree).
    let out = s
        .ingest_frame(&frame(2, vec![], vec![fragment(7, &whole, 10, n - 12)]), 3)
        .unwrap();
    assert_eq!(
        out.verdict,
        FrameVerdict::Stored {
            completed: vec![RecordClass::Log]
        }
    );
    let stored = s.records(&d, None, 10).unwrap();
    assert_eq!(stored[0].record.payload, whole);
    assert_eq!(stored[0].record.seq, 7);
    // A late fragment of a stored record is ignored.
    let late = s
        .ingest_frame(&frame(3, vec![], vec![fragment(7, &whole, 0, 3)]), 4)
        .unwrap();
    assert!(matches!(late.verdict, FrameVerdict::Stored { ref completed } if completed.is_empty()));
}

fn refused_fragments_store_and_mark_nothing(backend: &dyn Backend) {
    let (s, d) = setup(backend);
    let whole = log_bytes("another record split in fragments");
    s.ingest_frame(&frame(0, vec![], vec![fragment(4, &whole, 0, 10)]), 1)
        .unwrap();
    let mut bad = fragment(4, &whole, 5, 10);
    bad.data[0] ^= 0xff;
    let out = s
        .ingest_frame(&frame(1, vec![record(1)], vec![bad]), 2)
        .unwrap();
    assert_eq!(
        out.verdict,
        FrameVerdict::Refused(Refusal::Conflict { seq: 4 })
    );
    assert!(
        seqs(&*s, &d).is_empty(),
        "the frame's whole records are not stored either"
    );
    assert_eq!(window(&*s), Some((0, 1)), "counter 1 not marked");
    // A reassembled record that is not a valid record.
    let junk = vec![0xff; 20];
    let out = s
        .ingest_frame(&frame(2, vec![], vec![fragment(9, &junk, 0, 20)]), 3)
        .unwrap();
    assert!(matches!(
        out.verdict,
        FrameVerdict::Refused(Refusal::InvalidRecord(_))
    ));
    // Too many pending bytes for the device.
    let big = vec![1u8; 4000];
    let frags = (0..3).map(|i| fragment(20 + i, &big, 0, 3000)).collect();
    let out = s.ingest_frame(&frame(3, vec![], frags), 4).unwrap();
    assert!(matches!(
        out.verdict,
        FrameVerdict::Refused(Refusal::PendingFull { .. })
    ));
    assert_eq!(window(&*s), Some((0, 1)));
    // The pending piece of record 4 is still there and still counts.
    let rest = s
        .ingest_frame(
            &frame(4, vec![], vec![fragment(4, &whole, 10, whole.len() - 10)]),
            5,
        )
        .unwrap();
    assert!(matches!(rest.verdict, FrameVerdict::Stored { ref completed } if completed.len() == 1));
}

fn a_frame_under_the_new_epoch_drops_the_previous_one(backend: &dyn Backend) {
    let (s, d) = setup(backend);
    let next = s
        .rotate_frame_context(&d, 0, &[8; 32], &[9; 8], 50)
        .unwrap();
    assert_eq!((next.keys.epoch, next.keys.key_id), (1, [1, 2, 3, 4]));
    // No third epoch while the previous is kept.
    let same = s
        .rotate_frame_context(&d, 1, &[7; 32], &[7; 8], 60)
        .unwrap();
    assert_eq!((same.keys.epoch, same.keys.master_secret), (1, [8; 32]));
    let old = s
        .ingest_frame(&frame(0, vec![record(1)], vec![]), 70)
        .unwrap();
    assert!(old.previous_kept && old.newest.as_ref().unwrap().keys.epoch == 1);
    let mut new = frame(0, vec![record(2)], vec![]);
    new.epoch = 1;
    let out = s.ingest_frame(&new, 80).unwrap();
    assert!(!out.previous_kept);
    assert_eq!(s.frame_contexts(&d).unwrap().len(), 1);
    let again = s
        .ingest_frame(&frame(1, vec![record(3)], vec![]), 90)
        .unwrap();
    assert_eq!(again.verdict, FrameVerdict::UnknownContext);
    assert_eq!(seqs(&*s, &d), vec![1, 2]);
}

fn downlink_counters_are_never_handed_out_twice(backend: &dyn Backend) {
    let (s, _d) = setup(backend);
    let s: Arc<dyn Store> = Arc::from(s);
    let step = NonZeroU32::new(4).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut a = CounterReserver::open(StoreCounter::new(s.clone(), [1, 2, 3, 4], 0), step).unwrap();
    for _ in 0..3 {
        assert!(seen.insert(a.take().unwrap()));
    }
    // A second reserver of the same context (a replaced cache entry, or a
    // restart) starts above everything reserved.
    let mut b = CounterReserver::open(StoreCounter::new(s.clone(), [1, 2, 3, 4], 0), step).unwrap();
    for _ in 0..6 {
        assert!(seen.insert(b.take().unwrap()));
    }
    // The first one's next reservation conflicts instead of reusing b's.
    assert!(a.take().is_ok());
    assert!(matches!(
        a.take(),
        Err(flotta_proto::frame::ReserveError::Store(
            StoreError::Conflict(_)
        ))
    ));
    drop((a, b, s));
    let s: Arc<dyn Store> = Arc::from(backend.open());
    let mut c = CounterReserver::open(StoreCounter::new(s, [1, 2, 3, 4], 0), step).unwrap();
    for _ in 0..10 {
        assert!(seen.insert(c.take().unwrap()), "reused after a reopen");
    }
}

fn key_ids_are_unique_and_revoked_with_the_device(backend: &dyn Backend) {
    let (s, d) = setup(backend);
    let other = id("dev-2");
    s.enrol(&other, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
    assert!(matches!(
        s.create_frame_context(&other, &keys([1, 2, 3, 4]), 5),
        Err(StoreError::Conflict(_))
    ));
    // The first context stays; asking again returns it.
    let again = s.create_frame_context(&d, &keys([5, 5, 5, 5]), 5).unwrap();
    assert_eq!(again.keys.key_id, [1, 2, 3, 4]);
    let whole = log_bytes("pending when the device goes");
    s.ingest_frame(&frame(0, vec![], vec![fragment(3, &whole, 0, 4)]), 1)
        .unwrap();
    let event = JsonEvent {
        at_ms: 1,
        index: 0,
        payload: vec![],
    };
    s.decommission(&d, "op", false, &event, 2).unwrap();
    assert!(s.frame_contexts(&d).unwrap().is_empty());
    assert!(s.frame_contexts_by_key([1, 2, 3, 4]).unwrap().is_empty());
    let out = s
        .ingest_frame(&frame(1, vec![record(1)], vec![]), 3)
        .unwrap();
    assert_eq!(out.verdict, FrameVerdict::UnknownContext);
    // The key id is free again.
    s.create_frame_context(&other, &keys([1, 2, 3, 4]), 5)
        .unwrap();
}

both_backends!(
    a_frame_is_stored_once_and_its_counter_judged,
    fragments_survive_a_reopen_and_complete_a_record,
    refused_fragments_store_and_mark_nothing,
    a_frame_under_the_new_epoch_drops_the_previous_one,
    downlink_counters_are_never_handed_out_twice,
    key_ids_are_unique_and_revoked_with_the_device,
);
