//! The compact batch route over real mTLS: dedup, acknowledgement,
//! configuration sync, refusal of bad input without storing anything.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, batch, batch_response, heartbeat, log, onboard};
use flotta_proto::batch::{BatchRequest, MAX_BATCH_BYTES, WireRecord, batch_path};
use flotta_proto::payload::DeviceStatus;
use flotta_proto::record::RecordClass;
use flotta_server::device_id::DeviceId;
use flotta_server::testing::{TestOptions, spawn};
use serde_json::json;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

#[test]
fn a_batch_sent_twice_is_stored_once_and_acknowledged() {
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    let b = batch(
        "0",
        vec![
            log(1, "a"),
            heartbeat(2, DeviceStatus::Degraded),
            log(3, "c"),
        ],
    );
    let first = batch_response(&dev.batch("dev-1", &b));
    assert_eq!(first.acked_through, Some(3));
    let again = batch_response(&dev.batch("dev-1", &b));
    assert_eq!(again.acked_through, Some(3));
    let stored = s.store().records(&id("dev-1"), None, 100).unwrap();
    assert_eq!(
        stored.iter().map(|r| r.record.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(stored[0].record.payload, b.records[0].payload);

    let dev_row = s.store().device(&id("dev-1")).unwrap().unwrap();
    assert_eq!(dev_row.status.as_deref(), Some("degraded"));
    assert_eq!(
        dev_row.last_heartbeat.unwrap()["battery_percent"],
        json!(80)
    );

    // Overlapping batch: only the new records are added.
    let r = batch_response(&dev.batch("dev-1", &batch("0", vec![log(3, "c"), log(4, "d")])));
    assert_eq!(r.acked_through, Some(4));
    assert_eq!(s.store().records(&id("dev-1"), None, 100).unwrap().len(), 4);

    // An empty batch still reports what is stored.
    let r = batch_response(&dev.batch("dev-1", &batch("0", vec![])));
    assert_eq!(r.acked_through, Some(4));
}

#[test]
fn configuration_is_returned_only_when_the_version_differs() {
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    // The controller configured the device when it enrolled: version "1".
    let r = batch_response(&dev.batch("dev-1", &batch("", vec![])));
    let cfg = r
        .config
        .expect("config for a device that has an old version");
    assert_eq!(cfg.version, "1");
    let msg: serde_json::Value = serde_json::from_str(&cfg.message_json).unwrap();
    assert_eq!(msg["device_id"], "dev-1");
    assert_eq!(msg["version"], "1");
    assert_eq!(msg["configuration"]["heartbeat"]["period_seconds"], 60);

    assert_eq!(
        batch_response(&dev.batch("dev-1", &batch("1", vec![]))).config,
        None
    );

    // A workload placed on the device: a new version with the workload.
    let workload = json!({
        "apiVersion": "management.project-flotta.io/v1alpha1",
        "kind": "EdgeWorkload",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"type": "pod", "device": "dev-1",
                 "pod": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    });
    flotta_server::objects::apply(s.objects(), &workload, "default", "2026-01-01T00:00:00Z")
        .unwrap();
    flotta_server::controller::reconcile(s.store(), s.objects(), Default::default(), 0).unwrap();
    let r = batch_response(&dev.batch("dev-1", &batch("1", vec![log(1, "x")])));
    assert_eq!(r.acked_through, Some(1));
    let cfg = r.config.unwrap();
    assert_eq!(cfg.version, "2");
    assert!(cfg.message_json.contains("\"w\""));
    assert_eq!(
        batch_response(&dev.batch("dev-1", &batch("2", vec![]))).config,
        None
    );
}

#[test]
fn malformed_batches_get_400_and_store_nothing() {
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    let ct = flotta_proto::batch::BATCH_CONTENT_TYPE;
    let path = batch_path("dev-1");

    let mut wrong_class = log(2, "x");
    wrong_class.class = RecordClass::Event;
    let mut junk_payload = log(2, "x");
    junk_payload.payload = vec![0xff, 0xff];
    let bodies: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        vec![],
        BatchRequest {
            format: 99,
            config_version: String::new(),
            records: vec![log(1, "a")],
            frame_epoch: None,
            upload_interval_seconds: None,
        }
        .encode(),
        batch("", vec![log(1, "a"), log(1, "b")]).encode(),
        batch("", vec![log(1, "a"), wrong_class]).encode(),
        batch("", vec![log(1, "a"), junk_payload]).encode(),
        batch("", vec![log(1, "a"), log(u64::MAX, "z")]).encode(),
    ];
    for body in bodies {
        let r = dev.post(&path, ct, &body);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.json()["message"].is_string());
    }
    assert!(
        s.store()
            .records(&id("dev-1"), None, 10)
            .unwrap()
            .is_empty()
    );

    let r = dev.post(
        &path,
        "application/json",
        &batch("", vec![log(1, "a")]).encode(),
    );
    assert_eq!(r.status, 415);
    assert!(
        s.store()
            .records(&id("dev-1"), None, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn oversized_batches_are_refused() {
    let s = spawn(TestOptions {
        max_batch_bytes: 64 * 1024,
        ..TestOptions::default()
    })
    .unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    let big: Vec<WireRecord> = (1..=40).map(|i| log(i, &"x".repeat(2000))).collect();
    let r = dev.batch("dev-1", &batch("", big));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        s.store()
            .records(&id("dev-1"), None, 10)
            .unwrap()
            .is_empty()
    );

    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    let body = vec![0u8; MAX_BATCH_BYTES + 1];
    let r = dev.post(
        &batch_path("dev-1"),
        flotta_proto::batch::BATCH_CONTENT_TYPE,
        &body,
    );
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn heartbeats_in_batches_update_status_and_last_seen() {
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    batch_response(&dev.batch("dev-1", &batch("0", vec![heartbeat(5, DeviceStatus::Up)])));
    let d = s.store().device(&id("dev-1")).unwrap().unwrap();
    assert_eq!(d.status.as_deref(), Some("up"));
    assert!(d.last_seen_ms.is_some());
    // A re-sent older heartbeat does not roll the status back.
    batch_response(&dev.batch(
        "dev-1",
        &batch("0", vec![heartbeat(6, DeviceStatus::Degraded)]),
    ));
    batch_response(&dev.batch("dev-1", &batch("0", vec![heartbeat(5, DeviceStatus::Up)])));
    let d = s.store().device(&id("dev-1")).unwrap().unwrap();
    assert_eq!(d.status.as_deref(), Some("degraded"));
}

#[test]
fn deflated_batches_are_taken_and_answered_deflated_when_asked() {
    use flotta_proto::batch::{BATCH_CONTENT_TYPE, BatchResponse};
    use flotta_proto::compress::{deflate, inflate};
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    let plain = batch(
        "",
        (1..=60).map(|i| log(i, "pump 3 running at 41 C")).collect(),
    )
    .encode();
    let packed = deflate(&plain);
    assert!(
        packed.len() * 4 < plain.len(),
        "{} -> {}",
        plain.len(),
        packed.len()
    );
    let path = batch_path("dev-1");
    // Stale configuration version: the answer carries the configuration, compressed.
    let (r, enc) = dev.post_with(
        &path,
        BATCH_CONTENT_TYPE,
        &[
            ("content-encoding", "deflate"),
            ("accept-encoding", "gzip, deflate"),
        ],
        &packed,
    );
    assert_eq!(
        (r.status, enc.as_deref()),
        (200, Some("deflate")),
        "{}",
        r.text()
    );
    let resp = BatchResponse::decode(&inflate(&r.body, 1 << 20).unwrap()).unwrap();
    assert_eq!(resp.acked_through, Some(60));
    assert!(resp.config.is_some());
    assert_eq!(
        s.store().records(&id("dev-1"), None, 100).unwrap().len(),
        60
    );
    // Not asked for: a plain answer.
    let (r, enc) = dev.post_with(
        &path,
        BATCH_CONTENT_TYPE,
        &[("content-encoding", "deflate")],
        &packed,
    );
    assert_eq!((r.status, enc), (200, None));
    assert_eq!(
        BatchResponse::decode(&r.body).unwrap().acked_through,
        Some(60)
    );

    // Bad encodings are refused and store nothing.
    let more = batch("", vec![log(61, "x")]).encode();
    let (r, _) = dev.post_with(
        &path,
        BATCH_CONTENT_TYPE,
        &[("content-encoding", "br")],
        &more,
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let (r, _) = dev.post_with(
        &path,
        BATCH_CONTENT_TYPE,
        &[("content-encoding", "deflate")],
        &more,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let bomb = deflate(&vec![0u8; 8 * MAX_BATCH_BYTES]);
    let (r, _) = dev.post_with(
        &path,
        BATCH_CONTENT_TYPE,
        &[("content-encoding", "deflate")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        s.store().records(&id("dev-1"), None, 100).unwrap().len(),
        60
    );
}
