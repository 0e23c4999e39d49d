//! Tests of the request decoders, including property tests on arbitrary input.

use flotta_proto::batch::{BATCH_FORMAT_VERSION, BatchRequest, WireRecord};
use flotta_proto::payload::{
    Event, Heartbeat, Level, LogLine, Payload, WorkloadPhase, WorkloadState,
};
use flotta_proto::record::RecordClass;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn hb(status: DeviceStatus, uptime: u64) -> Payload {
    Payload::Heartbeat(Heartbeat {
        status,
        agent_version: "0.1.0".into(),
        uptime_seconds: uptime,
        queue_records: 1,
        queue_bytes: 2,
        dropped_records: [0, 0, 0],
        damaged_bytes: 0,
        battery_percent: None,
        workloads: vec![WorkloadState {
            name: "w".into(),
            phase: WorkloadPhase::Running,
        }],
    })
}

fn log(msg: &str) -> Payload {
    Payload::Log(LogLine {
        source: "agent".into(),
        level: Level::Info,
        message: msg.into(),
    })
}

fn wire(seq: u64, p: &Payload) -> WireRecord {
    WireRecord {
        seq,
        at_ms: seq.saturating_mul(10),
        class: p.class(),
        payload: p.encode(),
    }
}

fn batch(records: Vec<WireRecord>) -> Vec<u8> {
    BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: "3".into(),
        records,
        frame_epoch: None,
        upload_interval_seconds: None,
    }
    .encode()
}

#[test]
fn flotta_messages_decode() {
    let body = json!({"type": "data", "directive": "enrolment", "message_id": "m1",
        "content": {"target_namespace": "plant", "features": {"modelName": "pi", "hardware": {"hostname": "h"}}}});
    let (msg, out) = decode_data_out(body.to_string().as_bytes()).unwrap();
    assert_eq!(msg.message_id.as_deref(), Some("m1"));
    let DataOut::Enrolment(info) = out else {
        panic!("{out:?}")
    };
    assert_eq!(info.target_namespace.as_deref(), Some("plant"));
    assert_eq!(
        info.features.unwrap().hardware,
        Some(json!({"hostname": "h"}))
    );

    let body = json!({"directive": "registration", "content": {"certificate_request": "PEM"}});
    let (_, out) = decode_data_out(body.to_string().as_bytes()).unwrap();
    assert!(matches!(out, DataOut::Registration(r) if r.certificate_request == "PEM"));

    let body = json!({"directive": "heartbeat", "content": {"status": "up", "version": "1", "extra": [1]}});
    let (_, out) = decode_data_out(body.to_string().as_bytes()).unwrap();
    let DataOut::Heartbeat(info, raw) = out else {
        panic!()
    };
    assert_eq!(info.status.as_deref(), Some("up"));
    assert_eq!(raw["extra"], json!([1]), "the whole heartbeat is kept");
}

#[test]
fn bad_flotta_messages_are_refused_with_reasons() {
    let cases = [
        ("not json", "malformed JSON"),
        ("[]", "JSON object"),
        (
            r#"{"directive": "dance", "content": {}}"#,
            "unsupported directive",
        ),
        (r#"{"content": {}}"#, "unsupported directive"),
        (r#"{"directive": "enrolment"}"#, "no content"),
        (
            r#"{"directive": "enrolment", "content": null}"#,
            "no content",
        ),
        (
            r#"{"directive": "registration", "content": {}}"#,
            "certificate_request",
        ),
        (
            r#"{"directive": "enrolment", "content": {"target_namespace": 5}}"#,
            "enrolment content",
        ),
        (
            r#"{"directive": "heartbeat", "content": {"status": "sleepy"}}"#,
            "sleepy",
        ),
    ];
    for (body, want) in cases {
        let err = decode_data_out(body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(want), "{body}: {err}");
    }
}

#[test]
fn batch_decodes_records_and_newest_heartbeat() {
    let recs = vec![
        wire(1, &hb(DeviceStatus::Up, 1)),
        wire(2, &log("hello")),
        wire(5, &hb(DeviceStatus::Degraded, 5)),
        wire(
            9,
            &Payload::Event(Event {
                reason: "Boot".into(),
                message: "m".into(),
                level: Level::Warn,
            }),
        ),
    ];
    let d = decode_batch(&batch(recs.clone())).unwrap();
    assert_eq!(d.config_version, "3");
    assert_eq!(
        d.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 5, 9]
    );
    assert_eq!(d.records[1].payload, recs[1].payload);
    let st = d.status.unwrap();
    assert_eq!((st.status.as_str(), st.seq), ("degraded", Some(5)));
    assert_eq!(st.heartbeat["uptime_seconds"], json!(5));
}

#[test]
fn bad_records_are_refused() {
    let mut mismatched = wire(1, &log("x"));
    mismatched.class = RecordClass::Event;
    let err = decode_batch(&batch(vec![mismatched])).unwrap_err();
    assert!(err.to_string().contains("record seq 1"), "{err}");

    let mut junk = wire(2, &log("x"));
    junk.payload = vec![0xff; 3];
    assert!(matches!(
        decode_batch(&batch(vec![junk])),
        Err(BadBody::Record { seq: 2, .. })
    ));

    let huge = wire(u64::MAX, &log("x"));
    assert!(matches!(
        decode_batch(&batch(vec![huge])),
        Err(BadBody::Record { .. })
    ));

    let unordered = vec![wire(3, &log("a")), wire(2, &log("b"))];
    assert!(matches!(
        decode_batch(&batch(unordered)),
        Err(BadBody::Batch(_))
    ));
    assert!(matches!(
        decode_batch(b"\x07garbage"),
        Err(BadBody::Batch(_))
    ));
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (any::<bool>(), any::<u64>()).prop_map(|(up, t)| hb(
            if up {
                DeviceStatus::Up
            } else {
                DeviceStatus::Degraded
            },
            t
        )),
        ".{0,30}".prop_map(|m| log(&m)),
    ]
}

proptest! {
    #[test]
    fn data_out_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_data_out(&bytes);
    }

    #[test]
    fn data_out_decoder_handles_arbitrary_content(dir in prop::sample::select(vec!["enrolment", "registration", "heartbeat", "x"]), s in ".{0,40}", n in any::<i64>()) {
        for content in [json!(s), json!(n), json!({"status": s}), json!({"certificate_request": n}), json!([s])] {
            let body = json!({"directive": dir, "content": content}).to_string();
            let _ = decode_data_out(body.as_bytes());
        }
    }

    #[test]
    fn batch_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_batch(&bytes);
        let _ = decode_encoded_batch(&bytes, Some("deflate"), 4096);
    }

    #[test]
    fn deflated_batches_decode_like_plain_ones(items in prop::collection::btree_map(0u64..1_000_000, payload(), 0..20)) {
        let recs: Vec<_> = items.iter().map(|(s, p)| wire(*s, p)).collect();
        let plain = batch(recs);
        let packed = flotta_proto::compress::deflate(&plain);
        let a = decode_batch(&plain).unwrap();
        let b = decode_encoded_batch(&packed, Some("deflate"), plain.len()).unwrap();
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn valid_batches_roundtrip(items in prop::collection::btree_map(0u64..1_000_000, payload(), 0..20)) {
        let recs: Vec<_> = items.iter().map(|(s, p)| wire(*s, p)).collect();
        let d = decode_batch(&batch(recs.clone())).unwrap();
        prop_assert_eq!(d.records.len(), recs.len());
        for (got, want) in d.records.iter().zip(&recs) {
            prop_assert_eq!((got.seq, got.at_ms, got.class, &got.payload), (want.seq, want.at_ms, want.class, &want.payload));
        }
        let last_hb = items.iter().rev().find(|(_, p)| matches!(p, Payload::Heartbeat(_))).map(|(s, _)| *s);
        prop_assert_eq!(d.status.and_then(|s| s.seq), last_hb);
    }
}

#[test]
fn content_encodings_are_checked() {
    let plain = batch(vec![wire(1, &log("hello"))]);
    let packed = flotta_proto::compress::deflate(&plain);
    for enc in [None, Some(""), Some("identity")] {
        assert_eq!(
            decode_encoded_batch(&plain, enc, 1 << 20)
                .unwrap()
                .records
                .len(),
            1
        );
    }
    assert_eq!(
        decode_encoded_batch(&packed, Some("Deflate"), 1 << 20)
            .unwrap()
            .records
            .len(),
        1
    );
    assert!(matches!(
        decode_encoded_batch(&packed, Some("br"), 1 << 20),
        Err(BadBody::Encoding(e)) if e == "br"
    ));
    assert!(matches!(
        decode_encoded_batch(&plain, Some("deflate"), 1 << 20),
        Err(BadBody::Compressed(_))
    ));
    // A small body that inflates past the limit is refused as too large (413), not read.
    let bomb = flotta_proto::compress::deflate(&vec![0u8; 4 << 20]);
    assert!(matches!(
        decode_encoded_batch(&bomb, Some("deflate"), 1 << 20),
        Err(BadBody::TooLarge(limit)) if limit == 1 << 20
    ));
}

#[test]
fn heartbeat_workloads_are_in_flottas_words() {
    let Payload::Heartbeat(h) = hb(DeviceStatus::Up, 1) else {
        unreachable!()
    };
    let mut h = h;
    h.workloads.push(WorkloadState {
        name: "cam".into(),
        phase: WorkloadPhase::Crashed,
    });
    let v = heartbeat_json(&h);
    assert_eq!(v["status"], "up");
    assert_eq!(
        v["workloads"],
        json!([{"name": "w", "status": "running"}, {"name": "cam", "status": "crashed"}])
    );
}

#[test]
fn an_upload_interval_beyond_a_week_is_taken_as_a_week() {
    let with = |interval| {
        let body = BatchRequest {
            format: BATCH_FORMAT_VERSION,
            config_version: "3".into(),
            records: vec![],
            frame_epoch: None,
            upload_interval_seconds: interval,
        }
        .encode();
        decode_batch(&body).unwrap().upload_interval_seconds
    };
    assert_eq!(with(None), None);
    assert_eq!(with(Some(3600)), Some(3600));
    assert_eq!(with(Some(MAX_UPLOAD_INTERVAL_SECONDS)), Some(604_800));
    assert_eq!(with(Some(u32::MAX)), Some(MAX_UPLOAD_INTERVAL_SECONDS));
}
