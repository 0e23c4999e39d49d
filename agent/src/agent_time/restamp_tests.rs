//! Stamps corrected on upload, with injected clocks: records queued while
//! agent time was behind leave the queue corrected (TLS batches and sealed
//! frames alike), later ones unchanged, in order; across a restart; with a
//! damaged file; and the file pruned once the server has them all.

use std::path::Path;
use std::sync::Mutex;

use flotta_proto::payload::{Level, LogLine, Payload};

use super::floor::build_floor_ms;
use super::*;
use crate::queue::{DiskSpace, Durability, Queue, QueueConfig};

const DAY: u64 = 24 * 60 * 60 * 1_000;
/// How far behind the server agent time is found.
const JUMP: u64 = 90 * DAY;

struct Plenty;
impl DiskSpace for Plenty {
    fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }
}

type AgentQueue = Queue<AgentClock, Plenty>;

/// A system clock a year behind the build (the Pi Zero after a cold boot).
fn behind() -> ManualSources {
    ManualSources::at(build_floor_ms() - 365 * DAY)
}

/// The agent's start (`runtime.rs`): clock, queue, floors, range, pruning.
fn start(dir: &Path, src: &ManualSources) -> (AgentClock, AgentQueue, Vec<FloorError>) {
    let (clock, errors) = AgentClock::open(dir, src.clone());
    let (q, _) = Queue::open(
        &dir.join("queue"),
        QueueConfig::default(),
        clock.clone(),
        Plenty,
    )
    .unwrap();
    if let Some(newest) = q.newest_at_ms() {
        clock.raise_to(newest);
    }
    clock.note_unconfirmed_from(q.next_seq());
    clock.prune_restamps(q.acked_through(), q.next_seq());
    (clock, q, errors)
}

/// `n` records, a second apart; returns their raw stamps.
fn queue_records(q: &mut AgentQueue, src: &ManualSources, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            src.pass(1_000);
            let p = Payload::Log(LogLine {
                source: "test".into(),
                level: Level::Info,
                message: format!("record {i}"),
            });
            q.append(p.class(), &p.encode(), Durability::Durable)
                .unwrap();
            q.now_ms() // the stamp just given (no time passed since)
        })
        .collect()
}

fn read_stamps(q: &mut AgentQueue) -> Vec<(u64, u64)> {
    q.read_batch(usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| (r.seq, r.at_ms))
        .collect()
}

fn assert_monotonic(stamps: &[(u64, u64)]) {
    assert!(
        stamps.windows(2).all(|w| w[0].1 <= w[1].1),
        "not monotonic: {stamps:?}"
    );
}

/// Five records stamped behind, the server's `Date` 90 days ahead, three
/// records after: returns the raw stamps before and after the jump.
fn behind_then_corrected(
    q: &mut AgentQueue,
    clock: &AgentClock,
    src: &ManualSources,
) -> (Vec<u64>, Vec<u64>) {
    let early = queue_records(q, src, 5);
    let t1 = clock.now_ms();
    assert_eq!(clock.observe_server_time(t1 + JUMP), Observed::Corrected);
    let c = clock.take_corrections();
    assert_eq!(
        c[0].restamp,
        Some(Restamp {
            first_seq: 0,
            last_seq: 4,
            at_or_before_ms: t1,
            delta_ms: JUMP,
        })
    );
    let late = queue_records(q, src, 3);
    (early, late)
}

/// What the queue should send for `early` and `late` raw stamps: `(seq,
/// stamp)` with the early ones moved by the jump.
fn corrected(early: &[u64], late: &[u64]) -> Vec<(u64, u64)> {
    early
        .iter()
        .map(|at| at + JUMP)
        .chain(late.iter().copied())
        .enumerate()
        .map(|(i, at)| (i as u64, at))
        .collect()
}

#[test]
fn early_stamps_leave_the_queue_corrected_later_ones_unchanged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, mut q, errors) = start(dir.path(), &src);
    assert!(errors.is_empty(), "{errors:?}");
    let (early, late) = behind_then_corrected(&mut q, &clock, &src);
    let read = read_stamps(&mut q);
    let expected = corrected(&early, &late);
    assert_eq!(read, expected);
    // The last early record lands at or before the first one stamped
    // after the jump (T1 + delta = T2 <= later stamps).
    assert!(read[4].1 <= read[5].1);
    assert_monotonic(&read);
    // What is on disk is not rewritten: the raw stamps are still there.
    assert_eq!(q.newest_at_ms(), late.last().copied());
}

#[test]
fn a_restart_between_the_correction_and_the_upload_still_corrects() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, mut q, _) = start(dir.path(), &src);
    let (early, late) = behind_then_corrected(&mut q, &clock, &src);
    // Written at once (a server's Date), before any persist_if_due.
    assert!(restamp::path(dir.path()).exists());
    drop((clock, q));
    // Power lost and a reboot: the system clock is behind again.
    let rebooted = ManualSources {
        boot_id: 2,
        ..behind()
    };
    let (clock, mut q, errors) = start(dir.path(), &rebooted);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(clock.restamps().len(), 1);
    let more = queue_records(&mut q, &rebooted, 2);
    let read = read_stamps(&mut q);
    let stamps: Vec<u64> = read.iter().map(|r| r.1).collect();
    let expected: Vec<u64> = early
        .iter()
        .map(|at| at + JUMP)
        .chain(late.iter().copied())
        .chain(more.iter().copied())
        .collect();
    assert_eq!(stamps, expected);
    assert_monotonic(&read);
}

#[test]
fn a_system_step_is_kept_by_the_next_persist_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, mut q, _) = start(dir.path(), &src);
    let early = queue_records(&mut q, &src, 3);
    // NTP arrives: the system clock steps past agent time by a year.
    let real = clock.now_ms() + 365 * DAY;
    src.wall.set(real);
    let late = queue_records(&mut q, &src, 2);
    let c = clock.take_corrections();
    assert_eq!(c[0].kind, CorrectionKind::SystemStep);
    let r = c[0].restamp.expect("records were stamped behind");
    assert_eq!((r.first_seq, r.last_seq), (0, 2));
    // Seen while stamping (the queue locked): not written yet.
    assert!(!restamp::path(dir.path()).exists());
    assert!(clock.persist_if_due().unwrap());
    assert!(restamp::path(dir.path()).exists());
    drop((clock, q));
    src.pass(1_000);
    let (_clock, mut q, _) = start(dir.path(), &src);
    let read = read_stamps(&mut q);
    let expected: Vec<u64> = early
        .iter()
        .map(|at| at + r.delta_ms)
        .chain(late.iter().copied())
        .collect();
    assert_eq!(read.iter().map(|r| r.1).collect::<Vec<_>>(), expected);
    assert_monotonic(&read);
}

#[test]
fn a_damaged_corrections_file_is_reported_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, mut q, _) = start(dir.path(), &src);
    let (early, late) = behind_then_corrected(&mut q, &clock, &src);
    drop((clock, q));
    let path = restamp::path(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let (clock, mut q, errors) = start(dir.path(), &src);
    assert!(
        matches!(
            errors.as_slice(),
            [FloorError::Damaged {
                why: "CRC mismatch",
                ..
            }]
        ),
        "{errors:?}"
    );
    // No correction is believed: the raw stamps go out (still in order).
    let read = read_stamps(&mut q);
    let raw: Vec<u64> = early.iter().chain(late.iter()).copied().collect();
    assert_eq!(read.iter().map(|r| r.1).collect::<Vec<_>>(), raw);
    assert_monotonic(&read);
    // The next write replaces it (with nothing: the file goes).
    assert!(clock.persist_if_due().unwrap());
    assert!(!path.exists());
    let (_, _, errors) = start(dir.path(), &src);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_correction_is_forgotten_once_its_range_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, mut q, _) = start(dir.path(), &src);
    behind_then_corrected(&mut q, &clock, &src);
    clock.persist().unwrap();
    let path = restamp::path(dir.path());
    q.ack(3).unwrap();
    clock.prune_restamps(q.acked_through(), q.next_seq());
    assert_eq!(clock.restamps().len(), 1, "seq 4 still waits");
    assert!(!clock.persist_if_due().unwrap(), "unchanged: not rewritten");
    assert!(path.exists());
    q.ack(4).unwrap();
    clock.prune_restamps(q.acked_through(), q.next_seq());
    assert!(clock.restamps().is_empty());
    clock.persist_if_due().unwrap();
    assert!(!path.exists());
    // A queue made anew (lost with its directory) drops them at start too.
    let dir = tempfile::tempdir().unwrap();
    let (clock, mut q, _) = start(dir.path(), &src);
    behind_then_corrected(&mut q, &clock, &src);
    drop((clock, q));
    std::fs::remove_dir_all(dir.path().join("queue")).unwrap();
    let (clock, _q, _) = start(dir.path(), &src);
    assert!(clock.restamps().is_empty());
}

#[test]
fn a_tls_window_sends_corrected_stamps_after_the_date_that_corrected_them() {
    use flotta_proto::batch::BatchResponse;

    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, mut q, _) = start(dir.path(), &src);
    let raw = queue_records(&mut q, &src, 9);
    let q = Mutex::new(q);
    let mut sent: Vec<Vec<(u64, u64)>> = Vec::new();
    crate::uplink::run_window_with(
        &q,
        |req, _| {
            sent.push(req.records.iter().map(|r| (r.seq, r.at_ms)).collect());
            // The first answer's Date corrects agent time (client.rs).
            if sent.len() == 1 {
                clock.observe_server_time(clock.now_ms() + JUMP);
            }
            Ok((
                BatchResponse {
                    acked_through: req.records.last().map(|r| r.seq),
                    config: None,
                    frame_keys: None,
                },
                0,
            ))
        },
        256 + 3 * 32,
        dir.path(),
        None,
        &crate::desired::Desired::default(),
    )
    .unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let all: Vec<(u64, u64)> = sent.concat();
    // The first batch went before the correction: its stamps as they were.
    let expected: Vec<(u64, u64)> = raw
        .iter()
        .enumerate()
        .map(|(i, at)| (i as u64, if i < 3 { *at } else { at + JUMP }))
        .collect();
    assert_eq!(all, expected);
    assert_monotonic(&all);
    // The whole range is acknowledged: the correction is forgotten.
    let q = q.into_inner().unwrap();
    clock.prune_restamps(q.acked_through(), q.next_seq());
    assert!(clock.restamps().is_empty());
}

#[test]
fn sealed_frames_carry_corrected_stamps() {
    use crate::frames::test_server::{FakeCarrier, TestServer, keys};

    let dir = tempfile::tempdir().unwrap();
    crate::frame_keys::store(dir.path(), &keys(1)).unwrap();
    let src = behind();
    let (clock, mut q, _) = start(dir.path(), &src);
    let (early, late) = behind_then_corrected(&mut q, &clock, &src);
    let q = Mutex::new(q);
    let mut server = TestServer::new(keys(1));
    {
        let mut carrier = FakeCarrier::new(&mut server, 200);
        let mut state = crate::frames::FrameState::default();
        crate::frames::run_frame_window(
            &q,
            &mut carrier,
            &mut state,
            &crate::frames::tests::params(dir.path(), None),
            &crate::desired::Desired::load(dir.path()),
        )
        .unwrap();
    }
    let stored: Vec<(u64, u64)> = server
        .records
        .iter()
        .map(|(seq, (at_ms, _, _))| (*seq, *at_ms))
        .collect();
    let expected = corrected(&early, &late);
    assert_eq!(stored, expected);
    assert_monotonic(&stored);
}
