//! Certificate handling over real TLS: expired certificates (401 except
//! renewal), unknown CAs and bad clients (handshake fails), old CAs trusted.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{API, Client, CurlFiles, onboard};
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::pki::{CertificateAuthority, ClientIdentity, Role, Validity};
use flotta_server::testing::{TestOptions, TestServer, spawn};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use x509_parser::prelude::{FromDer, X509Certificate};

const MIN: Duration = Duration::from_secs(60);

fn identity(pem: &str) -> ClientIdentity {
    ClientIdentity::from_der(&CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()).unwrap()
}

fn expired_cert(s: &TestServer, id: &str) -> flotta_server::pki::IssuedCert {
    let now = SystemTime::now();
    s.device_cert(id, "default", now - 30 * MIN, now - 10 * MIN)
        .unwrap()
}

#[test]
fn expired_device_certificate_is_refused_with_401_except_for_renewal() {
    let s = spawn(TestOptions::default()).unwrap();
    onboard(&s, "dev-1");
    onboard(&s, "dev-2");
    let old = Client::new(&s, &expired_cert(&s, "dev-1"));
    for r in [
        old.get(&format!("{API}/data/dev-1/in")),
        old.get(&format!("{API}/control/dev-1/in")),
        old.post_json(&format!("{API}/control/dev-1/out"), &json!({})),
        old.data_out("dev-1", "heartbeat", json!({"status": "up"})),
        old.enrol("dev-1"),
        old.batch("dev-1", &common::batch("", vec![common::log(1, "x")])),
        old.register_as("dev-2", "dev-2").0,
    ] {
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let dev1 = DeviceId::parse("dev-1").unwrap();
    assert_eq!(s.store().records(&dev1, None, 1).unwrap().len(), 0);

    // Renewal: registration for its own id with the expired certificate.
    let (r, key_pem) = old.register_as("dev-1", "whatever");
    assert_eq!(r.status, 200, "{}", r.text());
    let cert_pem = r.json()["content"]["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh = identity(&cert_pem);
    assert!(matches!(&fresh.role, Role::Device { id, .. } if id.as_str() == "dev-1"));
    let lifetime = fresh.not_after.duration_since(SystemTime::now()).unwrap();
    assert!(lifetime > Duration::from_secs(29 * 86_400), "{lifetime:?}");

    let renewed = Client::new(&s, &flotta_server::pki::IssuedCert { cert_pem, key_pem });
    assert_eq!(renewed.get(&format!("{API}/data/dev-1/in")).status, 200);
    let r = renewed.batch("dev-1", &common::batch("", vec![common::log(1, "x")]));
    assert_eq!(common::batch_response(&r).acked_through, Some(1));
}

#[test]
fn expired_registration_certificate_is_refused_with_401() {
    let s = spawn(TestOptions::default()).unwrap();
    let now = SystemTime::now();
    let reg = s
        .pki()
        .ca()
        .issue_registration_cert(Validity::between(now - 30 * MIN, now - MIN))
        .unwrap();
    let c = Client::new(&s, &reg);
    assert_eq!(c.enrol("dev-1").status, 401);
    assert_eq!(c.register_as("dev-1", "dev-1").0.status, 401);
    assert!(s.store().devices().unwrap().is_empty());
}

#[test]
fn unknown_ca_fails_the_handshake() {
    let s = spawn(TestOptions::default()).unwrap();
    let rogue = CertificateAuthority::generate(
        Validity::starting_at(SystemTime::now(), Duration::from_secs(86_400)).unwrap(),
    )
    .unwrap();
    let rogue_reg = rogue
        .issue_registration_cert(
            Validity::starting_at(SystemTime::now(), Duration::from_secs(3600)).unwrap(),
        )
        .unwrap();
    let c = Client::new(&s, &rogue_reg);
    assert!(
        c.try_get(&format!("{API}/data/dev-1/in")).is_err(),
        "handshake must fail"
    );

    let files = CurlFiles::new(&s.ca_pem, &rogue_reg);
    let (status, _, exit) = files.curl(&format!("{}{API}/data/dev-1/in", s.base_url()), &[]);
    assert_eq!(status, 0, "no HTTP response");
    assert_ne!(exit, 0);
    assert!(s.store().devices().unwrap().is_empty());
}

#[test]
fn no_client_certificate_or_old_tls_fails_the_handshake() {
    let s = spawn(TestOptions::default()).unwrap();
    let files = CurlFiles::new(&s.ca_pem, &s.registration);
    let ca = files.dir.path().join("ca.pem");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ])
        .arg(&ca)
        .arg(format!("{}{API}/data/dev-1/in", s.base_url()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
    assert!(!out.status.success());

    // TLS 1.2 is not offered.
    let (status, _, exit) = files.curl(
        &format!("{}{API}/data/dev-1/out", s.base_url()),
        &["--tls-max", "1.2", "-d", "{}"],
    );
    assert_eq!(status, 0);
    assert_ne!(exit, 0);

    // A certificate that is not valid yet is refused at the handshake too.
    let now = SystemTime::now();
    let future = s
        .device_cert("dev-1", "default", now + 60 * MIN, now + 120 * MIN)
        .unwrap();
    assert!(
        Client::new(&s, &future)
            .try_get(&format!("{API}/data/dev-1/in"))
            .is_err()
    );
}

#[test]
fn certificates_of_an_old_ca_stay_trusted_and_renew_under_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let old_ca = CertificateAuthority::generate(
        Validity::starting_at(now, Duration::from_secs(86_400)).unwrap(),
    )
    .unwrap();
    let old_path = dir.path().join("old-ca.pem");
    std::fs::write(&old_path, old_ca.cert_pem()).unwrap();
    let s = spawn(TestOptions {
        old_ca_files: vec![old_path],
        ..TestOptions::default()
    })
    .unwrap();

    // A device flashed with a certificate from the old CA, enrolled earlier.
    onboard(&s, "dev-1");
    let old_cert = old_ca
        .issue_device_cert(
            &DeviceId::parse("dev-1").unwrap(),
            &Namespace::parse("default").unwrap(),
            Validity::starting_at(now, Duration::from_secs(3600)).unwrap(),
        )
        .unwrap();
    s.adopt_certificate("dev-1", &old_cert.cert_pem).unwrap();
    let c = Client::new(&s, &old_cert);
    assert_eq!(c.get(&format!("{API}/data/dev-1/in")).status, 200);
    let (r, key_pem) = c.register_as("dev-1", "dev-1");
    assert_eq!(r.status, 200, "{}", r.text());
    let cert_pem = r.json()["content"]["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    // The renewed certificate chains to the current CA.
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let current = CertificateDer::from_pem_slice(s.ca_pem.as_bytes()).unwrap();
    let (_, ca_parsed) = X509Certificate::from_der(&current).unwrap();
    assert!(
        parsed
            .verify_signature(Some(ca_parsed.public_key()))
            .is_ok()
    );
    let renewed = Client::new(&s, &flotta_server::pki::IssuedCert { cert_pem, key_pem });
    assert_eq!(renewed.get(&format!("{API}/data/dev-1/in")).status, 200);
}
