//! Bounds and eviction: bytes, age, free disk space (simulated and a real
//! full tmpfs); heartbeats go before logs before events, and drops are counted.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{FakeDisk, all_seqs, small_config};
use flotta_agent::clock::ManualClock;
use flotta_agent::queue::{Durability, Queue, QueueConfig, QueueError};
use flotta_proto::record::RecordClass::{self, Event, Heartbeat, Log};

fn bounded() -> QueueConfig {
    QueueConfig {
        max_total_bytes: 4 * 512,
        ..small_config()
    }
}

fn classes(q: &mut common::TestQueue) -> Vec<RecordClass> {
    q.read_batch(usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.class)
        .collect()
}

#[test]
fn byte_bound_drops_heartbeats_first_then_logs_and_counts_them() {
    let dir = common::fast_tempdir();
    let mut q = common::open(dir.path(), bounded());
    // Interleave: 10 events, 30 logs, 60 heartbeats' worth of 40-byte payloads.
    for i in 0..100u32 {
        let class = match i % 10 {
            0 => Event,
            1..=3 => Log,
            _ => Heartbeat,
        };
        q.append(class, &[i as u8; 40], Durability::Buffered)
            .unwrap();
        assert!(
            q.stats().bytes <= 4 * 512,
            "bound crossed at {i}: {:?}",
            q.stats()
        );
    }
    let s = q.stats();
    assert!(s.dropped[Heartbeat.index()] > 0, "{s:?}");
    assert_eq!(s.dropped[Event.index()], 0, "{s:?}");
    let kept = classes(&mut q);
    assert_eq!(
        kept.iter().filter(|c| **c == Event).count(),
        10,
        "every event kept"
    );
    // Counted drops plus what is left is everything appended.
    assert_eq!(kept.len() as u64 + s.dropped.iter().sum::<u64>(), 100);
    assert_eq!(s.records, kept.len() as u64);
}

#[test]
fn a_heartbeat_never_evicts_an_event_but_an_event_evicts_the_oldest_events() {
    const BOUND: u64 = 4 * 512;
    let dir = common::fast_tempdir();
    let mut q = common::open(dir.path(), bounded());
    let mut seqs = vec![q.append(Event, &[7; 60], Durability::Buffered).unwrap()];
    let frame = q.stats().bytes;
    while q.stats().dropped[Event.index()] == 0 {
        seqs.push(q.append(Event, &[7; 60], Durability::Buffered).unwrap());
        assert!(seqs.len() < 1000, "events alone must evict older events");
    }
    // The oldest events went, the newest stayed.
    let left = all_seqs(&mut q);
    assert!(left.contains(seqs.last().unwrap()));
    assert!(left[0] > seqs[0]);
    // Fill what room is left with events, without evicting.
    while q.stats().bytes + frame + 2 <= BOUND {
        q.append(Event, &[7; 60], Durability::Buffered).unwrap();
    }
    let dropped = q.stats().dropped;
    let events = all_seqs(&mut q);
    // A heartbeat (or a log) at least two bytes larger than an event frame cannot
    // fit, and must not evict events to make room.
    let err = q
        .append(Heartbeat, &[1; 62], Durability::Durable)
        .unwrap_err();
    assert!(
        matches!(err, QueueError::Full { .. }) && err.is_retriable(),
        "{err}"
    );
    let err = q.append(Log, &[1; 62], Durability::Durable).unwrap_err();
    assert!(matches!(err, QueueError::Full { .. }), "{err}");
    assert_eq!(q.stats().dropped, dropped);
    assert_eq!(all_seqs(&mut q), events);
    // An event may evict the oldest events.
    q.append(Event, &[1; 62], Durability::Durable).unwrap();
    assert!(q.stats().dropped[Event.index()] > dropped[Event.index()]);
    // Acknowledging frees room again.
    let last = *all_seqs(&mut q).last().unwrap();
    q.ack(last).unwrap();
    q.append(Heartbeat, &[1; 62], Durability::Durable).unwrap();
}

#[test]
fn heartbeats_make_room_by_dropping_older_heartbeats_only() {
    let dir = common::fast_tempdir();
    let mut q = common::open(dir.path(), bounded());
    for i in 0..10u8 {
        q.append(Event, &[i; 30], Durability::Buffered).unwrap();
        q.append(Log, &[i; 30], Durability::Buffered).unwrap();
    }
    for i in 0..300u32 {
        q.append(Heartbeat, &[i as u8; 40], Durability::Buffered)
            .unwrap();
        assert!(q.stats().bytes <= 4 * 512);
    }
    let s = q.stats();
    assert_eq!(
        s.dropped[Event.index()] + s.dropped[Log.index()],
        0,
        "{s:?}"
    );
    assert!(s.dropped[Heartbeat.index()] > 200, "{s:?}");
    let kept = classes(&mut q);
    assert_eq!(kept.iter().filter(|c| **c != Heartbeat).count(), 20);
    assert_eq!(
        kept.last(),
        Some(&Heartbeat),
        "the newest heartbeat is kept"
    );
}

#[test]
fn records_older_than_the_age_bound_are_dropped() {
    let dir = common::fast_tempdir();
    let clock = ManualClock::new(1_000_000);
    let cfg = QueueConfig {
        max_record_age_seconds: 3600,
        ..small_config()
    };
    let mut q = Queue::open(dir.path(), cfg.clone(), clock.clone(), FakeDisk::plenty())
        .unwrap()
        .0;
    for i in 0..40u8 {
        q.append(Log, &[i; 40], Durability::Buffered).unwrap();
    }
    clock.advance(3_600_001);
    q.append(Event, b"fresh", Durability::Durable).unwrap();
    let left = q.read_batch(usize::MAX, usize::MAX).unwrap();
    // Only what shares the active segment with the fresh record can remain.
    assert!(left.len() < 10, "{} old records left", left.len());
    assert_eq!(left.last().unwrap().payload, b"fresh");
    assert_eq!(q.stats().dropped[Log.index()] + left.len() as u64, 41);
    // Recovery applies the age bound too.
    drop(q);
    clock.advance(3_600_001);
    let mut q = Queue::open(dir.path(), cfg, clock, FakeDisk::plenty())
        .unwrap()
        .0;
    q.append(Event, b"later", Durability::Durable).unwrap();
    assert!(all_seqs(&mut q).len() <= left.len() + 1);
}

#[test]
fn low_free_space_evicts_and_then_refuses_without_losing_events() {
    let dir = common::fast_tempdir();
    let disk = FakeDisk::plenty();
    let cfg = QueueConfig {
        min_free_disk_bytes: 10_000,
        ..small_config()
    };
    let mut q = Queue::open(dir.path(), cfg, ManualClock::new(0), disk.clone())
        .unwrap()
        .0;
    for i in 0..30u8 {
        q.append(
            if i % 2 == 0 { Heartbeat } else { Event },
            &[i; 40],
            Durability::Buffered,
        )
        .unwrap();
    }
    disk.set_free(5_000);
    let err = q.append(Heartbeat, b"hb", Durability::Durable).unwrap_err();
    assert!(matches!(err, QueueError::Full { .. }));
    assert_eq!(
        q.stats().dropped[Heartbeat.index()],
        15,
        "all heartbeats went trying"
    );
    assert_eq!(classes(&mut q), vec![Event; 15]);
    disk.set_free(1 << 30);
    q.append(Heartbeat, b"hb", Durability::Durable).unwrap();
}

/// A real file system that runs out of space: a 256 KiB tmpfs. Needs root
/// (CI runs as root); elsewhere the test says why it did not run.
#[test]
fn real_enospc_is_an_error_not_a_crash_and_loses_nothing() {
    let mnt = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(mnt.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the real disk-full test"
        );
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(mnt.path());
    // Bounds the queue believes in, larger than the disk, and no free-space floor:
    // only ENOSPC can stop it.
    let cfg = QueueConfig {
        segment_bytes: 64 * 1024,
        max_total_bytes: 1 << 30,
        min_free_disk_bytes: 0,
        max_record_bytes: 4096,
        ..QueueConfig::default()
    };
    let mut q = Queue::open(
        mnt.path(),
        cfg.clone(),
        ManualClock::new(0),
        FakeDisk::plenty(),
    )
    .unwrap()
    .0;
    let mut durable = Vec::new();
    let err = loop {
        match q.append(Event, &[0xAB; 4000], Durability::Durable) {
            Ok(seq) => durable.push(seq),
            Err(e) => break e,
        }
        assert!(durable.len() < 1000, "a 256 KiB disk cannot hold this");
    };
    assert!(matches!(err, QueueError::Full { .. }), "{err}");
    assert!(!durable.is_empty());
    // The failed write left no partial frame behind: recovery finds no damage.
    drop(q);
    let (mut q, report) =
        Queue::open(mnt.path(), cfg, ManualClock::new(0), FakeDisk::plenty()).unwrap();
    assert_eq!(report.damaged_bytes, 0, "{report:?}");
    let seqs: Vec<u64> = q
        .read_batch(usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, durable);
    // Acknowledging frees space, and appends work again.
    q.ack(*durable.last().unwrap()).unwrap();
    q.append(Event, &[1; 4000], Durability::Durable).unwrap();
}
