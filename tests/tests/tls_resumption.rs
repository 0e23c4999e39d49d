//! TLS session resumption between the agent's Edge API client and the
//! server: an upload window's last request closes its connection, and the
//! next window resumes the session from the ticket instead of a full
//! handshake (no certificates on the wire, no signatures on the device). A
//! renewed certificate starts a fresh session, so a resumed session never
//! speaks for an identity the device no longer has.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use flotta_agent::client::{EdgeClient, Enrolment};
use flotta_agent::identity::{DeviceIdentity, new_key_and_csr};
use flotta_agent::link::LinkProfile;
use flotta_proto::batch::{BATCH_FORMAT_VERSION, BatchRequest, WireRecord};
use flotta_proto::payload::{Level, LogLine, Payload};
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::json;

fn link() -> LinkProfile {
    LinkProfile::preset("ethernet").unwrap()
}

/// Enrol and register `id` the way the agent does; return its identity.
fn onboard(s: &TestServer, id: &str) -> DeviceIdentity {
    let reg = EdgeClient::new(
        &s.base_url(),
        id,
        &s.ca_pem,
        &s.registration.cert_pem,
        &s.registration.key_pem,
        &link(),
    )
    .unwrap();
    let hw = json!({});
    if reg.enrol("default", &hw).unwrap() == Enrolment::Pending {
        assert_eq!(reg.enrol("default", &hw).unwrap(), Enrolment::Approved);
    }
    let pending = new_key_and_csr(id).unwrap();
    let cert = reg.register(&pending.csr_pem, &hw).unwrap();
    DeviceIdentity::new(pending, cert).unwrap()
}

fn client(s: &TestServer, id: &str, identity: &DeviceIdentity) -> EdgeClient {
    EdgeClient::new(
        &s.base_url(),
        id,
        &s.ca_pem,
        &identity.cert_pem,
        &identity.key_pem,
        &link(),
    )
    .unwrap()
}

fn batch(seq: u64) -> BatchRequest {
    let p = Payload::Log(LogLine {
        source: "test".into(),
        level: Level::Info,
        message: format!("record {seq}"),
    });
    BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: String::new(),
        records: vec![WireRecord {
            seq,
            at_ms: 1_700_000_000_000 + seq,
            class: p.class(),
            payload: p.encode(),
        }],
        frame_epoch: None,
        upload_interval_seconds: None,
    }
}

/// (full, resumed) handshakes the server has seen so far.
fn handshakes(s: &TestServer) -> (u64, u64) {
    let m = s.metrics();
    (m.handshakes("full"), m.handshakes("resumed"))
}

#[test]
fn windows_after_the_first_resume_the_session_and_a_new_identity_starts_afresh() {
    let s = spawn(TestOptions::default()).unwrap();
    let identity = onboard(&s, "resume-1");
    let before = handshakes(&s);

    let c = client(&s, "resume-1", &identity);
    // First window: a full handshake; its last request closes the connection.
    let (r, _) = c.batch(&batch(0), true).unwrap();
    assert_eq!(r.acked_through, Some(0));
    assert_eq!(handshakes(&s), (before.0 + 1, before.1));
    // Three more windows: each a new connection, each resumed.
    for seq in 1..4 {
        let (r, _) = c.batch(&batch(seq), true).unwrap();
        assert_eq!(r.acked_through, Some(seq));
    }
    assert_eq!(handshakes(&s), (before.0 + 1, before.1 + 3));

    // Requests inside a window share one connection: no handshake at all.
    let (r, _) = c.batch(&batch(4), false).unwrap();
    assert_eq!(r.acked_through, Some(4));
    let (r, _) = c.batch(&batch(5), true).unwrap();
    assert_eq!(r.acked_through, Some(5));
    assert_eq!(handshakes(&s), (before.0 + 1, before.1 + 4));

    // Renewal (with the current certificate), then a client for the new
    // certificate: it has no ticket, so a full handshake.
    let pending = new_key_and_csr("resume-1").unwrap();
    let cert = c.register(&pending.csr_pem, &json!({})).unwrap();
    let renewed = DeviceIdentity::new(pending, cert).unwrap();
    let after_renewal = handshakes(&s);
    let c2 = client(&s, "resume-1", &renewed);
    let (r, _) = c2.batch(&batch(6), true).unwrap();
    assert_eq!(r.acked_through, Some(6));
    assert_eq!(
        handshakes(&s),
        (after_renewal.0 + 1, after_renewal.1),
        "a new certificate must not resume an old session"
    );
}

#[test]
fn resumption_can_be_turned_off() {
    let s = spawn(TestOptions {
        tls_session_cache_entries: 0,
        ..TestOptions::default()
    })
    .unwrap();
    let identity = onboard(&s, "resume-2");
    let before = handshakes(&s);
    let c = client(&s, "resume-2", &identity);
    for seq in 0..3 {
        c.batch(&batch(seq), true).unwrap();
    }
    assert_eq!(handshakes(&s), (before.0 + 3, before.1));
}
