use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

/// Lines received: (from stderr, text).
type Got = Arc<Mutex<Vec<(bool, String)>>>;

fn collector() -> (Sink, Got) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&got);
    let sink: Sink = Arc::new(move |l: RawLine| {
        keep.lock()
            .unwrap()
            .push((l.stderr, String::from_utf8_lossy(&l.bytes).into_owned()));
    });
    (sink, got)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn follows_appends_joins_partials_and_survives_replacement_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ctr.log");
    append(
        &log,
        "2026-12-02T14:39:53.1+01:00 stdout F before\n2026-12-02T14:39:53.2+01:00 stdout P par\n",
    );
    let (sink, got) = collector();
    let f = FileFollower::start(&log, "web-app", sink).unwrap();
    let count = |n: usize| {
        let got = Arc::clone(&got);
        move || got.lock().unwrap().len() >= n
    };
    wait_until("the line already there", count(1));
    // The rest of the partial line, an interleaved stderr line, garbage.
    append(
        &log,
        "2026-12-02T14:39:53.3+01:00 stderr F oops\nnot a log line\n2026-12-02T14:39:53.4+01:00 stdout F tial\n",
    );
    wait_until("the appended lines", count(3));
    // conmon's rotation: a new file renamed over the old one.
    append(
        &log,
        "2026-12-02T14:39:54+01:00 stdout F last of the old file\n",
    );
    let new = dir.path().join("ctr.log.tmp");
    append(
        &new,
        "2026-12-02T14:39:55+01:00 stdout F first of the new file\n",
    );
    std::fs::rename(&new, &log).unwrap();
    wait_until("both sides of the rotation", count(5));
    // Truncated and written again.
    std::fs::write(&log, "").unwrap();
    append(
        &log,
        "2026-12-02T14:39:56+01:00 stdout F after truncation\n",
    );
    wait_until("the line after truncation", count(6));
    assert!(!f.is_done());
    assert_eq!(f.bad_lines.load(Ordering::Relaxed), 1);
    drop(f);
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            (false, "2026-12-02T13:39:53.100000000Z before".to_owned()),
            (true, "2026-12-02T13:39:53.300000000Z oops".to_owned()),
            (false, "2026-12-02T13:39:53.400000000Z partial".to_owned()),
            (
                false,
                "2026-12-02T13:39:54.000000000Z last of the old file".to_owned()
            ),
            (
                false,
                "2026-12-02T13:39:55.000000000Z first of the new file".to_owned()
            ),
            (
                false,
                "2026-12-02T13:39:56.000000000Z after truncation".to_owned()
            ),
        ]
    );
}

#[test]
fn dropping_ends_the_thread_and_long_lines_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ctr.log");
    let long = "x".repeat(MAX_READ_BYTES);
    append(
        &log,
        &format!(
            "2026-12-02T00:00:00Z stdout P {long}\n2026-12-02T00:00:00Z stdout P more\n2026-12-02T00:00:00Z stdout F end\n"
        ),
    );
    let (sink, got) = collector();
    let f = FileFollower::start(&log, "c", sink).unwrap();
    wait_until("the long line", || got.lock().unwrap().len() == 1);
    let line = got.lock().unwrap()[0].1.clone();
    assert_eq!(
        line.len(),
        "2026-12-02T00:00:00.000000000Z ".len() + MAX_READ_BYTES
    );
    let done = Arc::clone(&f.done);
    drop(f);
    wait_until("the thread to end", || done.load(Ordering::SeqCst));
}

#[test]
fn a_missing_file_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, _) = collector();
    assert!(FileFollower::start(&dir.path().join("ctr.log"), "c", sink).is_err());
}

#[test]
fn the_follower_is_done_when_its_directory_goes() {
    let dir = tempfile::tempdir().unwrap();
    let userdata = dir.path().join("userdata");
    std::fs::create_dir(&userdata).unwrap();
    let log = userdata.join("ctr.log");
    append(&log, "2026-12-02T00:00:00Z stdout F last words\n");
    let (sink, got) = collector();
    let f = FileFollower::start(&log, "c", sink).unwrap();
    wait_until("the line", || got.lock().unwrap().len() == 1);
    assert!(!f.is_done());
    std::fs::remove_dir_all(&userdata).unwrap();
    wait_until("the follower done", || f.is_done());
}
