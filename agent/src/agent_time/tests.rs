//! Agent time with injected clocks: every rule of the module docs.

use std::path::Path;

use flotta_proto::record::RecordClass;

use super::floor::{self, Saved, build_floor_ms};
use super::*;
use crate::queue::{DiskSpace, Durability, Queue, QueueConfig};

const MIN: u64 = 60_000;
const DAY: u64 = 24 * 60 * MIN;

struct Plenty;
impl DiskSpace for Plenty {
    fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }
}

/// A system clock a year behind the build (the Pi Zero after a cold boot).
fn behind() -> ManualSources {
    ManualSources::at(build_floor_ms() - 365 * DAY)
}

#[test]
fn a_clock_behind_the_build_starts_at_the_build_and_runs_at_the_real_rate() {
    let src = behind();
    let clock = AgentClock::new(src.clone(), build_floor_ms());
    assert_eq!(clock.now_ms(), build_floor_ms());
    src.pass(5_000);
    assert_eq!(clock.now_ms(), build_floor_ms() + 5_000);
    // A system clock ahead of the floor is agent time as it is.
    let ahead = ManualSources::at(build_floor_ms() + DAY);
    assert_eq!(
        AgentClock::new(ahead, build_floor_ms()).now_ms(),
        build_floor_ms() + DAY
    );
}

#[test]
fn the_persisted_floor_resumes_after_a_restart_and_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, err) = AgentClock::open(dir.path(), src.clone());
    assert!(err.is_empty());
    clock.observe_server_time(build_floor_ms() + 30 * DAY);
    assert!(clock.persist_if_due().unwrap());
    let written = clock.now_ms();
    assert_eq!(written, build_floor_ms() + 30 * DAY);
    drop(clock);
    // Restarted 10 s later in the same boot: the floor plus those 10 s.
    src.pass(10_000);
    let (clock, _) = AgentClock::open(dir.path(), src.clone());
    assert_eq!(clock.now_ms(), written + 10_000);
    // After a reboot the time off is unknown: the floor itself.
    let rebooted = ManualSources {
        boot_id: 2,
        ..behind()
    };
    let (clock, _) = AgentClock::open(dir.path(), rebooted);
    assert_eq!(clock.now_ms(), written);
}

#[test]
fn a_damaged_floor_file_is_reported_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = floor::path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"garbage, not a floor").unwrap();
    let (clock, err) = AgentClock::open(dir.path(), behind());
    assert!(
        matches!(err.as_slice(), [FloorError::Damaged { .. }]),
        "{err:?}"
    );
    assert_eq!(clock.now_ms(), build_floor_ms());
    // The next write mends it.
    assert!(clock.persist().unwrap());
    assert!(floor::load(dir.path()).unwrap().is_some());
}

#[test]
fn a_floor_below_the_build_does_not_lower_agent_time() {
    let dir = tempfile::tempdir().unwrap();
    let old = Saved {
        floor_ms: 1_000,
        boot_id: 9,
        since_boot_ms: 0,
    };
    floor::store(dir.path(), &old).unwrap();
    let (clock, _) = AgentClock::open(dir.path(), behind());
    assert_eq!(clock.now_ms(), build_floor_ms());
}

#[test]
fn a_system_clock_stepped_back_never_moves_agent_time_back() {
    let src = ManualSources::at(build_floor_ms() + DAY);
    let clock = AgentClock::new(src.clone(), build_floor_ms());
    let before = clock.now_ms();
    src.wall.set(build_floor_ms() + DAY - 3_600_000); // one hour back
    src.mono.advance(1_000);
    let after = clock.now_ms();
    assert_eq!(after, before + 1_000, "keeps the real rate");
    // Small steps back are absorbed the same way, reading after reading.
    let mut last = after;
    for _ in 0..50 {
        src.wall.set(src.wall.now_ms() - 7);
        src.mono.advance(3);
        let now = clock.now_ms();
        assert!(now >= last);
        last = now;
    }
    assert!(
        clock.take_corrections().is_empty(),
        "a step back is no correction"
    );
}

#[test]
fn a_system_clock_stepped_forward_is_followed_and_a_big_step_reported() {
    let src = behind();
    let clock = AgentClock::new(src.clone(), build_floor_ms());
    clock.note_unconfirmed_from(40);
    clock.stamp(40);
    clock.stamp(41);
    let t0 = clock.now_ms();
    // A small step (NTP slewing a few seconds): followed, not reported.
    src.wall.set(t0 + 2 * MIN);
    assert_eq!(clock.now_ms(), t0 + 2 * MIN);
    assert!(clock.take_corrections().is_empty());
    // NTP arrives: the system clock is now ahead of the floor by a day.
    let real = t0 + DAY;
    src.wall.set(real);
    assert_eq!(clock.now_ms(), real);
    let c = clock.take_corrections();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, CorrectionKind::SystemStep);
    assert_eq!((c[0].from_ms, c[0].to_ms), (t0 + 2 * MIN, real));
    assert_eq!(
        c[0].restamp,
        Some(Restamp {
            first_seq: 40,
            last_seq: 41,
            at_or_before_ms: t0 + 2 * MIN,
            delta_ms: real - (t0 + 2 * MIN),
        })
    );
    assert!(clock.persist_if_due().is_ok());
}

#[test]
fn the_servers_date_corrects_a_clock_behind_and_is_reported_once() {
    let src = behind();
    let clock = AgentClock::new(src.clone(), build_floor_ms());
    clock.note_unconfirmed_from(7);
    clock.stamp(7);
    assert!(!clock.is_confirmed());
    let t1 = clock.now_ms();
    let server = t1 + 90 * DAY;
    assert_eq!(clock.observe_server_time(server), Observed::Corrected);
    assert!(clock.is_confirmed());
    assert_eq!(clock.now_ms(), server);
    src.pass(1_000);
    assert_eq!(clock.now_ms(), server + 1_000, "corrected time runs on");
    let c = clock.take_corrections();
    assert_eq!(
        c,
        vec![Correction {
            kind: CorrectionKind::ServerDate,
            from_ms: t1,
            to_ms: server,
            restamp: Some(Restamp {
                first_seq: 7,
                last_seq: 7,
                at_or_before_ms: t1,
                delta_ms: 90 * DAY,
            }),
        }]
    );
    assert!(clock.take_corrections().is_empty());
    // Later answers agree: nothing more to tell.
    assert_eq!(clock.observe_server_time(server + 2_000), Observed::Agrees);
    assert!(clock.take_corrections().is_empty());
}

#[test]
fn a_date_within_the_threshold_confirms_without_moving_time() {
    let src = ManualSources::at(build_floor_ms() + DAY);
    let clock = AgentClock::new(src, build_floor_ms());
    let now = clock.now_ms();
    let near = now + CORRECTION_THRESHOLD_MS - 1_000;
    assert_eq!(clock.observe_server_time(near), Observed::Agrees);
    assert!(clock.is_confirmed());
    assert_eq!(clock.now_ms(), now, "no silent jump");
    assert!(clock.take_corrections().is_empty());
    // Confirmed: records from now on are not suspect.
    clock.note_unconfirmed_from(3);
    clock.stamp(3);
    clock.observe_server_time(now + DAY);
    assert_eq!(clock.take_corrections()[0].restamp, None);
}

#[test]
fn a_clock_ahead_of_the_server_is_reported_once_and_not_moved_back() {
    let src = ManualSources::at(build_floor_ms() + 400 * DAY);
    let clock = AgentClock::new(src, build_floor_ms());
    let now = clock.now_ms();
    assert_eq!(clock.observe_server_time(now - 10 * DAY), Observed::Ahead);
    assert_eq!(clock.observe_server_time(now - 10 * DAY), Observed::Ahead);
    let c = clock.take_corrections();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, CorrectionKind::Ahead);
    assert!(clock.now_ms() >= now);
    assert!(!clock.is_confirmed());
}

#[test]
fn the_floor_is_written_at_most_every_persist_interval_unless_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let src = behind();
    let (clock, _) = AgentClock::open(dir.path(), src.clone());
    assert!(clock.persist_if_due().unwrap(), "first write");
    src.pass(MIN);
    assert!(!clock.persist_if_due().unwrap());
    clock.observe_server_time(build_floor_ms() + 10 * DAY);
    assert!(
        clock.persist_if_due().unwrap(),
        "a correction is written at once"
    );
    assert_eq!(
        floor::load(dir.path()).unwrap().unwrap().floor_ms,
        build_floor_ms() + 10 * DAY
    );
    src.pass(PERSIST_EVERY_MS - 1);
    assert!(!clock.persist_if_due().unwrap());
    src.pass(1);
    assert!(clock.persist_if_due().unwrap());
    // Without a data directory nothing is written, and that is no error.
    assert!(!AgentClock::new(behind(), 0).persist_if_due().unwrap());
}

#[test]
fn queued_records_keep_monotonic_stamps_through_steps_corrections_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("queue");
    let src = behind();
    let open = |src: &ManualSources| {
        let (clock, _) = AgentClock::open(dir.path(), src.clone());
        let (q, _) = Queue::open(&qdir, QueueConfig::default(), clock.clone(), Plenty).unwrap();
        if let Some(newest) = q.newest_at_ms() {
            clock.raise_to(newest);
        }
        (clock, q)
    };
    let (clock, mut q) = open(&src);
    let append = |q: &mut Queue<AgentClock, Plenty>| {
        q.append(RecordClass::Log, b"x", Durability::Durable)
            .unwrap();
    };
    append(&mut q);
    src.wall.set(src.wall.now_ms() - DAY); // stepped back
    src.mono.advance(10);
    append(&mut q);
    clock.observe_server_time(build_floor_ms() + 100 * DAY); // corrected
    append(&mut q);
    src.mono.advance(10);
    append(&mut q);
    drop((clock, q));
    // Power lost: no floor file was written, and the system clock is
    // behind again. The queue's newest stamp holds agent time up.
    let rebooted = ManualSources {
        boot_id: 2,
        ..behind()
    };
    let (_clock, mut q) = open(&rebooted);
    append(&mut q);
    let stamps: Vec<u64> = q
        .read_batch(usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.at_ms)
        .collect();
    assert_eq!(stamps.len(), 5);
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    assert_eq!(stamps[2], build_floor_ms() + 100 * DAY);
}
