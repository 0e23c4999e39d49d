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
                },
                0,
            ))
        },
        64 * 1024,
        dir.path(),
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
        &Desired::default(),
    )
    .unwrap_err();
    assert!(err.is_retriable());
    assert_eq!(q.lock().unwrap().stats().records, 5);
}
