//! kill -9 at random moments: a child process takes frame counters from a
//! [`CounterReserver`] over the agent's [`FileCounterStore`] as fast as it
//! can, appending each to a log it fsyncs after taking the counter and before
//! taking the next (so before "using" it). The parent kills it with SIGKILL,
//! restarts it on the same data directory, and at the end checks that no
//! counter was ever handed out twice across all runs, that each run's
//! counters are consecutive, and that each crash skipped at most `step`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::num::NonZeroU32;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Rng;
use flotta_agent::frame_counter::open_reserver;
use flotta_proto::frame::KeyId;

const CHILD_ENV: &str = "FLOTTA_KILL9_COUNTER_DIR";
const ROUNDS: usize = 50;
/// Small, so that kills often land inside a reservation write.
const STEP: u32 = 4;
const KEY: KeyId = KeyId([1, 2, 3, 4]);
const EPOCH: u32 = 9;

/// The log of run `round`: one line per counter handed out.
fn log_path(dir: &Path, round: usize) -> PathBuf {
    dir.join(format!("used-{round}.log"))
}

#[test]
#[ignore = "child process of kill9_never_hands_out_a_counter_twice"]
fn kill9_counter_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let round: usize = std::env::var("FLOTTA_KILL9_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let mut log = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(log_path(&dir, round))
        .unwrap();
    let step = NonZeroU32::new(STEP).unwrap();
    let mut reserver = open_reserver(&dir.join("data"), KEY, EPOCH, step).unwrap();
    loop {
        let counter = reserver.take().unwrap();
        // Durably recorded before the counter is used (and before the next take).
        writeln!(log, "{counter}").unwrap();
        log.sync_data().unwrap();
    }
}

/// The counters run `round` logged, only whole lines (a line cut by the kill
/// was never used).
fn read_log(dir: &Path, round: usize) -> Vec<u32> {
    let text = fs::read_to_string(log_path(dir, round)).unwrap_or_default();
    let Some(end) = text.rfind('\n') else {
        return Vec::new();
    };
    text[..end].lines().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn kill9_never_hands_out_a_counter_twice() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::seeded();
    let mut seen = BTreeSet::new();
    // The counter after the last one logged, and the runs since one was.
    let mut expected_next = 0u32;
    let mut runs_since_log = 0u32;
    let (mut total_skipped, mut productive) = (0u32, 0usize);
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "kill9_counter_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("FLOTTA_KILL9_ROUND", round.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(5_000 + rng.next() % 60_000));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "round {round}: the child must die by SIGKILL, not fail: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        runs_since_log += 1;
        let used = read_log(dir.path(), round);
        let Some(&first) = used.first() else { continue };
        for (i, &c) in used.iter().enumerate() {
            assert!(
                seen.insert(c),
                "round {round}: counter {c} handed out twice"
            );
            assert_eq!(
                c,
                first + i as u32,
                "round {round}: counters not consecutive"
            );
        }
        assert!(
            first >= expected_next,
            "round {round}: resumed at {first}, below {expected_next} already used"
        );
        let skipped = first - expected_next;
        assert!(
            skipped <= STEP * runs_since_log,
            "round {round}: {skipped} counters skipped over {runs_since_log} crash(es), step {STEP}"
        );
        total_skipped += skipped;
        expected_next = used.last().unwrap() + 1;
        runs_since_log = 0;
        productive += 1;
    }
    eprintln!(
        "{ROUNDS} kills: {} counters used, {total_skipped} skipped, {productive} runs used some",
        seen.len()
    );
    assert!(
        productive > ROUNDS / 2 && seen.len() > ROUNDS,
        "the children barely ran: {productive} productive runs, {} counters",
        seen.len()
    );
}
