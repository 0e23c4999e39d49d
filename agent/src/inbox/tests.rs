//! Inbox tests: what `emit` writes is what the agent ingests, in order; bad
//! files are kept aside, never lost, never a panic.

use std::fs;

use flotta_proto::payload::{Event, Level, LogLine, Payload};
use proptest::prelude::*;

use super::*;

fn event(reason: &str, level: Level) -> Payload {
    Payload::Event(Event {
        reason: reason.into(),
        message: format!("{reason} happened"),
        level,
    })
}

fn drain_all(dir: &Path) -> Drained {
    drain(dir, |_| Ok::<(), std::convert::Infallible>(())).unwrap()
}

#[test]
fn submitted_records_are_ingested_once_in_order() {
    let d = tempfile::tempdir().unwrap();
    assert!(
        pending(d.path()).unwrap().is_empty(),
        "no inbox yet is empty"
    );
    let a = event("A", Level::Error);
    let b = Payload::Log(LogLine {
        source: "sensor".into(),
        level: Level::Info,
        message: "b".into(),
    });
    submit(d.path(), &b, 2_000).unwrap();
    submit(d.path(), &a, 1_000).unwrap();
    let got = drain_all(d.path());
    assert_eq!(got.ingested, vec![a, b], "oldest (by submit time) first");
    assert!(got.rejected.is_empty());
    assert!(drain_all(d.path()).ingested.is_empty(), "nothing twice");
    assert!(pending(d.path()).unwrap().is_empty());
}

#[test]
fn a_failing_append_keeps_the_file_for_the_next_drain() {
    let d = tempfile::tempdir().unwrap();
    let a = event("A", Level::Warn);
    submit(d.path(), &a, 1).unwrap();
    let err = drain(d.path(), |_| Err("disk full")).unwrap_err();
    assert!(matches!(err, DrainError::Append("disk full")));
    assert_eq!(pending(d.path()).unwrap().len(), 1);
    assert_eq!(drain_all(d.path()).ingested, vec![a]);
}

#[test]
fn bad_files_are_moved_aside_with_a_reason_and_temp_files_ignored() {
    let d = tempfile::tempdir().unwrap();
    let inbox = dir(d.path());
    fs::create_dir_all(&inbox).unwrap();
    fs::write(
        inbox.join("0001-junk.rec"),
        b"\xff\xff\xff\xff not postcard",
    )
    .unwrap();
    let mut trailing = event("T", Level::Info).encode();
    trailing.push(0);
    fs::write(inbox.join("0002-trailing.rec"), &trailing).unwrap();
    fs::write(
        inbox.join("0003-huge.rec"),
        vec![0u8; MAX_FILE_BYTES as usize + 1],
    )
    .unwrap();
    fs::write(inbox.join("0004-half.tmp"), b"being written").unwrap();
    let good = event("G", Level::Info);
    submit(d.path(), &good, 9_999_999).unwrap();

    let got = drain_all(d.path());
    assert_eq!(got.ingested, vec![good]);
    let reasons: Vec<&str> = got.rejected.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[1].contains("trailing"), "{reasons:?}");
    assert!(reasons[2].contains("bytes"), "{reasons:?}");
    for (path, _) in &got.rejected {
        assert!(path.starts_with(inbox.join(REJECTED_DIR)) && path.exists());
    }
    assert!(
        inbox.join("0004-half.tmp").exists(),
        "temp files are not taken"
    );
}

#[test]
fn watch_reports_new_files() {
    let d = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    watch(d.path(), move || {
        let _ = tx.send(());
    })
    .unwrap();
    submit(d.path(), &event("W", Level::Error), 1).unwrap();
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .expect("inotify reported the file");
}

#[test]
fn oversized_records_are_refused_at_submit() {
    let d = tempfile::tempdir().unwrap();
    let big = Payload::Log(LogLine {
        source: "x".into(),
        level: Level::Info,
        message: "x".repeat(MAX_FILE_BYTES as usize),
    });
    assert!(matches!(
        submit(d.path(), &big, 1),
        Err(InboxError::Invalid(_))
    ));
    assert!(pending(d.path()).unwrap().is_empty());
}

proptest! {
    #[test]
    fn any_file_is_either_ingested_or_kept_aside(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir(d.path())).unwrap();
        fs::write(dir(d.path()).join("x.rec"), &bytes).unwrap();
        let got = drain_all(d.path());
        prop_assert_eq!(got.ingested.len() + got.rejected.len(), 1);
        if let Some(p) = got.ingested.first() {
            prop_assert_eq!(&decode(&p.encode()).unwrap(), p, "re-encoding is stable");
        } else {
            prop_assert_eq!(fs::read(&got.rejected[0].0).unwrap(), bytes, "kept byte for byte");
        }
        prop_assert!(pending(d.path()).unwrap().is_empty());
    }

    #[test]
    fn decode_accepts_exactly_what_submit_writes(reason in ".{0,40}", msg in ".{0,200}", lvl in 0u8..3) {
        let level = [Level::Info, Level::Warn, Level::Error][lvl as usize];
        let p = Payload::Event(Event { reason, message: msg, level });
        prop_assert_eq!(decode(&p.encode()).unwrap(), p);
    }
}

#[test]
fn a_rejected_file_never_overwrites_an_earlier_one() {
    let d = tempfile::tempdir().unwrap();
    let inbox = dir(d.path());
    fs::create_dir_all(&inbox).unwrap();
    fs::write(inbox.join("same.rec"), b"first junk").unwrap();
    drain_all(d.path());
    fs::write(inbox.join("same.rec"), b"second junk").unwrap();
    let got = drain_all(d.path());
    let kept = &got.rejected[0].0;
    assert_eq!(fs::read(kept).unwrap(), b"second junk");
    assert_eq!(
        fs::read(inbox.join(REJECTED_DIR).join("same.rec")).unwrap(),
        b"first junk"
    );
}
