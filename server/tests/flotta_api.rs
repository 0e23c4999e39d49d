//! Flotta's routes over real mTLS: enrolment, approval, registration,
//! heartbeat, configuration, control, and every authorisation rule.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{API, Client, onboard};
use flotta_server::pki::{ClientIdentity, Role};
use flotta_server::store::Approval;
use flotta_server::testing::{TestOptions, TestServer, spawn};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;

fn server(auto_approve: bool) -> TestServer {
    spawn(TestOptions {
        auto_approve,
        ..TestOptions::default()
    })
    .unwrap()
}

fn identity(pem: &str) -> ClientIdentity {
    ClientIdentity::from_der(&CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()).unwrap()
}

#[test]
fn enrolment_answers_200_then_208_and_registration_forces_the_subject() {
    let s = server(true);
    let reg = Client::new(&s, &s.registration);
    assert_eq!(reg.enrol("dev-1").status, 200);
    assert_eq!(reg.enrol("dev-1").status, 208, "already approved");

    // The CSR asks for another CN (and a SAN); the certificate says dev-1/default.
    let (r, _) = reg.register_as("dev-1", "someone-else");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["directive"], "registration");
    assert_eq!(body["message_id"], "m-1");
    let cert = body["content"]["certificate"].as_str().unwrap();
    let id = identity(cert);
    assert!(
        matches!(&id.role, Role::Device { id, namespace } if id.as_str() == "dev-1" && namespace.as_deref() == Some("default"))
    );

    let dev = s.store().device(&"dev-1".parse_id()).unwrap().unwrap();
    assert!(dev.registered);
    assert_eq!(dev.hardware, Some(json!({"hostname": "dev-1"})));
}

trait ParseId {
    fn parse_id(&self) -> flotta_server::device_id::DeviceId;
}

impl ParseId for str {
    fn parse_id(&self) -> flotta_server::device_id::DeviceId {
        flotta_server::device_id::DeviceId::parse(self).unwrap()
    }
}

#[test]
fn pending_devices_cannot_register_until_approved() {
    let s = server(false);
    let reg = Client::new(&s, &s.registration);
    assert_eq!(reg.enrol("dev-1").status, 200);
    assert_eq!(reg.enrol("dev-1").status, 200, "still pending: not 208");
    let (r, _) = reg.register_as("dev-1", "dev-1");
    assert_eq!(
        r.status,
        404,
        "Flotta answers 404 before approval: {}",
        r.text()
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not approved")
    );
    assert!(
        !s.store()
            .device(&"dev-1".parse_id())
            .unwrap()
            .unwrap()
            .registered
    );

    s.approve("dev-1").unwrap();
    assert_eq!(
        s.store()
            .device(&"dev-1".parse_id())
            .unwrap()
            .unwrap()
            .approval,
        Approval::Approved
    );
    assert_eq!(reg.enrol("dev-1").status, 208);
    let (r, _) = reg.register_as("dev-1", "dev-1");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn unknown_device_cannot_register() {
    let s = server(true);
    let reg = Client::new(&s, &s.registration);
    let (r, _) = reg.register_as("ghost", "ghost");
    assert_eq!(r.status, 404);
}

#[test]
fn registration_certificate_may_only_enrol_and_register() {
    let s = server(true);
    let reg = Client::new(&s, &s.registration);
    reg.enrol("dev-1");
    for r in [
        reg.get(&format!("{API}/data/dev-1/in")),
        reg.get(&format!("{API}/control/dev-1/in")),
        reg.post_json(&format!("{API}/control/dev-1/out"), &json!({})),
        reg.data_out("dev-1", "heartbeat", json!({"status": "up"})),
        reg.batch("dev-1", &common::batch("", vec![common::log(1, "x")])),
    ] {
        assert_eq!(r.status, 403, "{}", r.text());
    }
    assert_eq!(s.store().acked_through(&"dev-1".parse_id()).unwrap(), None);
}

#[test]
fn device_certificate_acts_only_for_its_own_id() {
    let s = server(true);
    let cert = onboard(&s, "dev-1");
    onboard(&s, "dev-2");
    let dev = Client::new(&s, &cert);
    assert_eq!(dev.get(&format!("{API}/data/dev-1/in")).status, 200);
    for r in [
        dev.get(&format!("{API}/data/dev-2/in")),
        dev.get(&format!("{API}/control/dev-2/in")),
        dev.post_json(&format!("{API}/control/dev-2/out"), &json!({})),
        dev.data_out("dev-2", "heartbeat", json!({"status": "up"})),
        dev.enrol("dev-2"),
        dev.register_as("dev-2", "dev-2").0,
        dev.batch("dev-2", &common::batch("", vec![common::log(1, "x")])),
    ] {
        assert_eq!(r.status, 403, "{}", r.text());
    }
    assert_eq!(s.store().acked_through(&"dev-2".parse_id()).unwrap(), None);
}

#[test]
fn registration_certificate_cannot_re_register_a_device_using_its_own_certificate() {
    let s = server(true);
    let cert = onboard(&s, "dev-1");
    let reg = Client::new(&s, &s.registration);
    // Before the device used its certificate, registering again is allowed
    // (the device may have crashed before saving the answer).
    assert_eq!(reg.register_as("dev-1", "dev-1").0.status, 200);
    let dev = Client::new(&s, &cert);
    assert_eq!(
        dev.data_out("dev-1", "heartbeat", json!({"status": "up"}))
            .status,
        200
    );
    let (r, _) = reg.register_as("dev-1", "dev-1");
    assert_eq!(r.status, 403, "{}", r.text());
    // The device itself may renew.
    assert_eq!(dev.register_as("dev-1", "dev-1").0.status, 200);
}

#[test]
fn configuration_heartbeat_and_control() {
    let s = server(true);
    let cert = onboard(&s, "dev-1");
    let dev = Client::new(&s, &cert);

    let r = dev.get(&format!("{API}/data/dev-1/in"));
    assert_eq!(r.status, 200);
    let msg = r.json();
    assert_eq!(msg["type"], "data");
    assert_eq!(msg["directive"], "device");
    assert_eq!(msg["content"]["device_id"], "dev-1");
    // Configured by the controller when the device enrolled.
    assert_eq!(msg["content"]["version"], "1");
    assert_eq!(msg["content"]["workloads"], json!([]));

    let spec = json!({"configuration": {"heartbeat": {"period_seconds": 5}}, "workloads": [{"name": "w1", "specification": "x"}]});
    let v = s
        .store()
        .set_configuration(&"dev-1".parse_id(), &spec)
        .unwrap();
    let msg = dev.get(&format!("{API}/data/dev-1/in")).json();
    assert_eq!(msg["content"]["version"], v);
    assert_eq!(msg["content"]["workloads"][0]["name"], "w1");

    let hb = json!({"status": "degraded", "version": "0.1.0", "workloads": [], "hardware": {"hostname": "h2"}});
    assert_eq!(dev.data_out("dev-1", "heartbeat", hb.clone()).status, 200);
    let d = s.store().device(&"dev-1".parse_id()).unwrap().unwrap();
    assert_eq!(d.status.as_deref(), Some("degraded"));
    assert_eq!(d.last_heartbeat, Some(hb));
    assert_eq!(d.hardware, Some(json!({"hostname": "h2"})));
    assert!(d.last_seen_ms.is_some());

    // Control answers are JSON, as Flotta's swagger declares: a `message`
    // with nothing to do, and a `message-response` naming what was received.
    let r = dev.get(&format!("{API}/control/dev-1/in"));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let msg = r.json();
    assert!(msg["message_id"].is_string(), "{msg}");
    assert_eq!(msg.get("content"), None, "no command: {msg}");
    let r = dev.post_json(
        &format!("{API}/control/dev-1/out"),
        &json!({"type": "event", "message_id": "c-7"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.json()["message_id"], "c-7");
}

#[test]
fn unknown_devices_get_404_or_a_disconnect_command() {
    let s = server(true);
    // A certificate for a device the store does not know (e.g. deleted).
    let now = std::time::SystemTime::now();
    let cert = s
        .device_cert(
            "gone",
            "default",
            now - std::time::Duration::from_secs(60),
            now + std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let dev = Client::new(&s, &cert);
    assert_eq!(dev.get(&format!("{API}/data/gone/in")).status, 404);
    assert_eq!(
        dev.data_out("gone", "heartbeat", json!({"status": "up"}))
            .status,
        404
    );
    let r = dev.batch("gone", &common::batch("", vec![common::log(1, "x")]));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = dev.get(&format!("{API}/control/gone/in"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["content"]["command"], "disconnect");
    assert_eq!(dev.get(&format!("{API}/nothing/here")).status, 404);
}

#[test]
fn malformed_bodies_get_400_and_change_nothing() {
    let s = server(true);
    let reg = Client::new(&s, &s.registration);
    let path = format!("{API}/data/dev-1/out");
    for body in [
        &b"{not json"[..],
        b"[]",
        br#"{"directive": "enrolment"}"#,
        br#"{"directive": "fly", "content": {}}"#,
        br#"{"directive": "enrolment", "content": {"target_namespace": "Not_Valid"}}"#,
    ] {
        let r = reg.post(&path, "application/json", body);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
        assert!(r.json()["message"].is_string());
    }
    assert_eq!(s.store().device(&"dev-1".parse_id()).unwrap(), None);

    // Invalid device id in the path.
    assert_eq!(reg.enrol("Bad_Id").status, 400);

    reg.enrol("dev-1");
    let r = reg.data_out(
        "dev-1",
        "registration",
        json!({"certificate_request": "garbage"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("certificate signing request"));
    assert!(
        !s.store()
            .device(&"dev-1".parse_id())
            .unwrap()
            .unwrap()
            .registered
    );

    let big = vec![b' '; s.config.max_json_bytes + 1];
    let r = reg.post(&path, "application/json", &big);
    assert_eq!(r.status, 413);
}

#[test]
fn admin_listener_serves_health_without_client_certificates() {
    let s = server(true);
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("http://{}/healthz", s.admin_addr)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("http://{}/readyz", s.admin_addr)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\n");
}
