//! Upload-window tests with the batch call injected: a window sends what
//! was queued when it opened, in batches that fit, each acknowledged before
//! deletion; records arriving meanwhile wait; only the last request closes.

use std::sync::Mutex;

use flotta_proto::batch::{BatchRequest, BatchResponse, ConfigUpdate};
use flotta_proto::record::RecordClass;

use super::*;
use crate::clock::ManualClock;
use crate::queue::{Durability, Queue, QueueConfig};

struct Plenty;
impl DiskSpace for Plenty {
    fn free_bytes(&self, _: &std::path::Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }
}

type TestQueue = Queue<ManualClock, Plenty>;

fn queue(dir: &std::path::Path, records: usize) -> Mutex<TestQueue> {
    let (mut q, _) = Queue::open(
        &dir.join("queue"),
        QueueConfig::default(),
        ManualClock::new(1_700_000_000_000),
        Plenty,
    )
    .unwrap();
    for i in 0..records {
        q.append(
            RecordClass::Log,
            format!("record {i:04}").as_bytes(),
            Durability::Durable,
        )
        .unwrap();
    }
    Mutex::new(q)
}

fn ack_all(req: &BatchRequest) -> BatchResponse {
    BatchResponse {
        acked_through: req.records.last().map(|r| r.seq),
        config: None,
        frame_keys: None,
    }
}

#[test]
fn records_arriving_during_a_window_wait_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 10);
    let mut calls: Vec<(Vec<u64>, bool)> = Vec::new();
    // Batches of 3 records (the budget allows 96 / 32). Every request "takes
    // long enough" for a new heartbeat to be queued meanwhile.
    let report = run_window_with(
        &q,
        |req, last| {
            calls.push((req.records.iter().map(|r| r.seq).collect(), last));
            q.lock()
                .unwrap()
                .append(RecordClass::Heartbeat, b"meanwhile", Durability::Durable)
                .unwrap();
            Ok((ack_all(req), 0))
        },
        256 + 3 * 32,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap();
    let sent: Vec<u64> = calls.iter().flat_map(|(s, _)| s.clone()).collect();
    assert_eq!(
        sent,
        (0..10).collect::<Vec<_>>(),
        "exactly what was queued at the start"
    );
    assert!(calls.len() > 1, "the batch limit split the window");
    let lasts: Vec<bool> = calls.iter().map(|(_, l)| *l).collect();
    assert_eq!(lasts.iter().filter(|l| **l).count(), 1, "{lasts:?}");
    assert_eq!(lasts.last(), Some(&true), "only the last request closes");
    assert_eq!(report.records_acked, 10);
    assert_eq!(report.requests as usize, calls.len());
    // The heartbeats queued meanwhile are still there, for the next window.
    assert_eq!(q.lock().unwrap().stats().records, calls.len() as u64);
}

#[test]
fn an_empty_queue_still_syncs_configuration_in_one_closing_request() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 0);
    let mut calls = Vec::new();
    let report = run_window_with(
        &q,
        |req, last| {
            calls.push((req.records.len(), req.config_version.clone(), last));
            Ok((
                BatchResponse {
                    acked_through: None,
                    config: Some(ConfigUpdate {
                        version: "3".into(),
                        message_json: r#"{"configuration":{"heartbeat":{"period_seconds":5}}}"#
                            .into(),
                    }),
                    frame_keys: None,
                },
                0,
            ))
        },
        64 * 1024,
        dir.path(),
        None,
        &Desired {
            version: "2".into(),
            message_json: "{}".into(),
        },
    )
    .unwrap();
    assert_eq!(calls, vec![(0, "2".to_owned(), true)]);
    let d = report.config_updated.unwrap();
    assert_eq!(
        (d.version.as_str(), d.heartbeat_period_seconds()),
        ("3", Some(5))
    );
    assert_eq!(Desired::load(dir.path()), d, "stored for the next boot");
}

#[test]
fn a_failed_request_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 5);
    let err = run_window_with(
        &q,
        |_, _| {
            Err(ClientError::Status {
                status: 503,
                body: "busy".into(),
            })
        },
        64 * 1024,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap_err();
    assert!(err.is_retriable());
    assert_eq!(q.lock().unwrap().stats().records, 5);
}

#[test]
fn after_a_lost_queue_records_move_above_what_the_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 5);
    let before = q.lock().unwrap().read_batch(100, 1 << 20).unwrap();
    // The queue was made from nothing, and the server holds this device's records up to 10.
    std::fs::write(dir.path().join(crate::renumber::MARKER), b"").unwrap();
    let mut sent = Vec::new();
    let report = run_window_with(
        &q,
        |req, _| {
            sent.push(req.records.clone());
            let held = req.records.last().map_or(10, |r| r.seq.max(10));
            Ok((
                BatchResponse {
                    acked_through: Some(held),
                    config: None,
                    frame_keys: None,
                },
                0,
            ))
        },
        64 * 1024,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap();
    assert!(sent[0].is_empty(), "the window asks before it sends");
    let delivered: Vec<_> = sent[1..].iter().flatten().collect();
    assert_eq!(
        delivered.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (11..16).collect::<Vec<_>>()
    );
    for (old, new) in before.iter().zip(&delivered) {
        assert_eq!(
            (old.payload.clone(), old.at_ms),
            (new.payload.clone(), new.at_ms)
        );
    }
    assert_eq!(report.renumbered, 5);
    assert_eq!(q.lock().unwrap().stats().records, 0);
    assert!(!crate::renumber::pending(dir.path()));

    // The next window does not ask again.
    let mut calls = 0;
    run_window_with(
        &q,
        |req, _| {
            calls += 1;
            Ok((ack_all(req), 0))
        },
        64 * 1024,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap();
    assert_eq!(calls, 1);
}

#[test]
fn a_new_device_keeps_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 3);
    std::fs::write(dir.path().join(crate::renumber::MARKER), b"").unwrap();
    let mut sent = Vec::new();
    let report = run_window_with(
        &q,
        |req, _| {
            sent.push(req.records.iter().map(|r| r.seq).collect::<Vec<_>>());
            // Nothing stored yet for this device.
            let resp = if req.records.is_empty() {
                BatchResponse {
                    acked_through: None,
                    config: None,
                    frame_keys: None,
                }
            } else {
                ack_all(req)
            };
            Ok((resp, 0))
        },
        64 * 1024,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap();
    assert_eq!(sent, vec![vec![], vec![0, 1, 2]]);
    assert_eq!(report.renumbered, 0);
    assert!(!crate::renumber::pending(dir.path()));
}

#[test]
fn frame_keys_are_announced_by_epoch_and_stored_when_sent() {
    use flotta_proto::frame_keys::FrameKeys;
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 10);
    let keys = |epoch| FrameKeys {
        key_id: [1, 2, 3, 4],
        epoch,
        master_secret: [epoch as u8; 32],
        master_salt: vec![0; 8],
    };
    let mut epochs = Vec::new();
    // Batches of 3: the first answer delivers epoch 4, the third rotates to 5.
    let report = run_window_with(
        &q,
        |req, _| {
            epochs.push(req.frame_epoch);
            let mut resp = ack_all(req);
            resp.frame_keys = match epochs.len() {
                1 => Some(keys(4)),
                3 => Some(keys(5)),
                _ => None,
            };
            Ok((resp, 0))
        },
        256 + 3 * 32,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap();
    assert_eq!(epochs, [None, Some(4), Some(4), Some(5)]);
    assert_eq!(report.frame_keys_epoch, Some(5));
    assert_eq!(crate::frame_keys::load(dir.path()).unwrap(), Some(keys(5)));
    // The next window announces what is stored.
    let mut announced = None;
    run_window_with(
        &q,
        |req, _| {
            announced = req.frame_epoch;
            Ok((ack_all(req), 0))
        },
        64 * 1024,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap();
    assert_eq!(announced, Some(5));
}

#[test]
fn an_answer_above_what_was_sent_deletes_only_what_was_sent() {
    // Frames stored a summary (or records after one left for TLS) at a
    // higher seq: the server's acked_through (the highest seq it holds)
    // must not delete records this window has not sent yet.
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 10);
    let mut calls = 0;
    let err = run_window_with(
        &q,
        |req, _| {
            calls += 1;
            if calls > 1 {
                return Err(ClientError::Status {
                    status: 503,
                    body: String::new(),
                });
            }
            assert_eq!(req.records.len(), 3);
            Ok((
                BatchResponse {
                    acked_through: Some(9),
                    config: None,
                    frame_keys: None,
                },
                0,
            ))
        },
        256 + 3 * 32,
        dir.path(),
        None,
        &Desired::default(),
    )
    .unwrap_err();
    assert!(err.is_retriable());
    let left: Vec<u64> = q
        .lock()
        .unwrap()
        .read_batch(100, 1 << 20)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(left, (3..10).collect::<Vec<_>>());
}

#[test]
fn every_request_tells_the_upload_interval() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue(dir.path(), 10);
    // A queue made from nothing: the probe carries it too.
    std::fs::write(dir.path().join(crate::renumber::MARKER), b"").unwrap();
    let mut told = Vec::new();
    run_window_with(
        &q,
        |req, _| {
            told.push((req.format, req.upload_interval_seconds));
            Ok((ack_all(req), 0))
        },
        256 + 3 * 32,
        dir.path(),
        Some(3600),
        &Desired::default(),
    )
    .unwrap();
    assert!(told.len() > 2, "a probe and several batches: {told:?}");
    assert!(
        told.iter()
            .all(|t| *t == (flotta_proto::batch::BATCH_FORMAT_VERSION, Some(3600))),
        "{told:?}"
    );
}
