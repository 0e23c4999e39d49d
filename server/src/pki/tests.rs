//! Unit tests of the CA: issuing, CSR signing, identities, files on disk.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DnType, KeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::device_id::{DeviceId, Namespace};

const DAY: Duration = Duration::from_secs(86_400);

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate(Validity::starting_at(SystemTime::now(), 365 * DAY).unwrap())
        .unwrap()
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn subject(pem: &str, f: impl Fn(&X509Certificate<'_>) -> String) -> String {
    let d = der(pem);
    let (_, cert) = X509Certificate::from_der(&d).unwrap();
    f(&cert)
}

fn csr(cn: &str, ou: &str, sans: Vec<String>) -> String {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, ou);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn registration_cert_has_registration_role() {
    let ca = ca();
    let reg = ca
        .issue_registration_cert(Validity::starting_at(SystemTime::now(), DAY).unwrap())
        .unwrap();
    let id = ClientIdentity::from_der(&der(&reg.cert_pem)).unwrap();
    assert_eq!(id.role, Role::Registration);
    assert!(!id.is_expired(SystemTime::now()));
    assert!(id.is_expired(SystemTime::now() + 2 * DAY));
}

#[test]
fn csr_subject_is_forced_to_device_id_and_namespace() {
    let ca = ca();
    let pem = csr("someone-else", "kube-system", vec!["evil.example".into()]);
    let dev = DeviceId::parse("dev-1").unwrap();
    let ns = Namespace::parse("plant-a").unwrap();
    let now = SystemTime::now();
    let cert = ca
        .sign_device_csr(
            &pem,
            &dev,
            &ns,
            Validity::starting_at(now, 30 * DAY).unwrap(),
        )
        .unwrap();
    let id = ClientIdentity::from_der(&der(&cert)).unwrap();
    assert_eq!(
        id.role,
        Role::Device {
            id: dev,
            namespace: Some("plant-a".into())
        }
    );
    let lifetime = id.not_after.duration_since(now).unwrap();
    assert!(lifetime > 29 * DAY && lifetime <= 30 * DAY, "{lifetime:?}");
    let sans = subject(&cert, |c| {
        format!(
            "{:?}",
            c.subject_alternative_name()
                .ok()
                .flatten()
                .map(|s| s.value.general_names.len())
        )
    });
    assert_eq!(sans, "None", "requested SANs must not be copied");
    let issuer = subject(&cert, |c| c.issuer().to_string());
    assert!(issuer.contains(CA_COMMON_NAME), "{issuer}");
}

#[test]
fn csr_with_bad_signature_is_refused() {
    let ca = ca();
    let pem = csr("dev-1", "default", vec![]);
    // Flip one base64 character inside the last body line: the signature.
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    let last_body = lines.len() - 2;
    let line = &mut lines[last_body];
    let c = line.remove(2);
    line.insert(2, if c == 'A' { 'B' } else { 'A' });
    let tampered = lines.join("\n");
    let err = ca
        .sign_device_csr(
            &tampered,
            &DeviceId::parse("dev-1").unwrap(),
            &Namespace::parse("default").unwrap(),
            Validity::starting_at(SystemTime::now(), DAY).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, PkiError::InvalidCsr(_)), "{err}");
    assert!(!err.is_retriable());
}

#[test]
fn garbage_csr_is_refused() {
    let ca = ca();
    for junk in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ] {
        let r = ca.sign_device_csr(
            junk,
            &DeviceId::parse("d").unwrap(),
            &Namespace::parse("default").unwrap(),
            Validity::starting_at(SystemTime::now(), DAY).unwrap(),
        );
        assert!(matches!(r, Err(PkiError::InvalidCsr(_))), "{junk:?}");
    }
}

fn settings(names: &[&str]) -> PkiSettings {
    PkiSettings {
        server_names: names.iter().map(|s| s.to_string()).collect(),
        ca_validity: 3650 * DAY,
        server_cert_validity: 365 * DAY,
        old_ca_files: vec![],
        ca_files: None,
    }
}

#[test]
fn first_start_creates_then_reloads_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let a = Pki::load_or_init(dir.path(), &settings(&["localhost", "127.0.0.1"]), now).unwrap();
    for key in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let b = Pki::load_or_init(dir.path(), &settings(&["localhost", "127.0.0.1"]), now).unwrap();
    assert_eq!(a.ca().cert_pem(), b.ca().cert_pem());
    assert_eq!(
        a.server_cert().cert_pem,
        b.server_cert().cert_pem,
        "server cert kept"
    );

    // New names: same CA, new server certificate.
    let c = Pki::load_or_init(dir.path(), &settings(&["flotta.example", "10.0.0.1"]), now).unwrap();
    assert_eq!(a.ca().cert_pem(), c.ca().cert_pem());
    assert_ne!(a.server_cert().cert_pem, c.server_cert().cert_pem);

    // Near expiry: re-issued.
    let later = now + 360 * DAY;
    let d = Pki::load_or_init(
        dir.path(),
        &settings(&["flotta.example", "10.0.0.1"]),
        later,
    )
    .unwrap();
    assert_ne!(c.server_cert().cert_pem, d.server_cert().cert_pem);
}

#[test]
fn missing_ca_certificate_with_existing_key_is_an_error_not_a_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&["localhost"]);
    Pki::load_or_init(dir.path(), &s, SystemTime::now()).unwrap();
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    let err = Pki::load_or_init(dir.path(), &s, SystemTime::now()).unwrap_err();
    assert!(err.to_string().contains("ca.pem"), "{err}");
}

/// A CA written by a first start into `dir/pki`, then configured as files
/// (read-only, as a Kubernetes Secret mount is) for a data directory
/// `dir/data`.
fn shared_ca(dir: &std::path::Path) -> (PkiSettings, String) {
    let made = Pki::load_or_init(
        &dir.join("pki"),
        &settings(&["localhost"]),
        SystemTime::now(),
    )
    .unwrap();
    let mut s = settings(&["localhost"]);
    s.ca_files = Some(CaFiles {
        cert: dir.join("pki/ca.pem"),
        key: dir.join("pki/ca.key"),
    });
    for f in ["ca.pem", "ca.key"] {
        let path = dir.join("pki").join(f);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    (s, made.ca().cert_pem().to_owned())
}

#[test]
fn a_configured_ca_is_loaded_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let (s, ca_pem) = shared_ca(dir.path());
    let before: Vec<_> = ["ca.pem", "ca.key"]
        .map(|f| std::fs::read(dir.path().join("pki").join(f)).unwrap())
        .into();
    let modified = std::fs::metadata(dir.path().join("pki/ca.key"))
        .unwrap()
        .modified()
        .unwrap();
    let data = dir.path().join("data");
    let a = Pki::load_or_init(&data, &s, SystemTime::now()).unwrap();
    assert_eq!(a.ca().cert_pem(), ca_pem);
    assert_eq!(s.ca_cert_path(&data), dir.path().join("pki/ca.pem"));
    // No CA in the data directory; the server certificate is there, signed
    // by the configured CA.
    assert!(!data.join("ca.pem").exists() && !data.join("ca.key").exists());
    let server = std::fs::read_to_string(data.join("server.pem")).unwrap();
    assert_eq!(server, a.server_cert().cert_pem);
    let server_der = der(&server);
    let (_, cert) = X509Certificate::from_der(&server_der).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(a.ca().cert_der()).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    // A second replica (another data directory) gets the same CA, its own
    // server certificate; nothing was written to the CA's files.
    let b = Pki::load_or_init(&dir.path().join("data2"), &s, SystemTime::now()).unwrap();
    assert_eq!(b.ca().cert_pem(), ca_pem);
    assert_ne!(b.server_cert().cert_pem, a.server_cert().cert_pem);
    let after: Vec<_> = ["ca.pem", "ca.key"]
        .map(|f| std::fs::read(dir.path().join("pki").join(f)).unwrap())
        .into();
    assert_eq!(before, after);
    let meta = std::fs::metadata(dir.path().join("pki/ca.key")).unwrap();
    assert_eq!(meta.modified().unwrap(), modified);
    assert_eq!(meta.permissions().mode() & 0o777, 0o400);
}

#[test]
fn a_configured_ca_that_is_missing_is_an_error_naming_it_not_a_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&["localhost"]);
    s.ca_files = Some(CaFiles {
        cert: dir.path().join("secret/ca.pem"),
        key: dir.path().join("secret/ca.key"),
    });
    let data = dir.path().join("data");
    let err = Pki::load_or_init(&data, &s, SystemTime::now()).unwrap_err();
    assert!(err.to_string().contains("secret/ca.pem"), "{err}");
    assert!(!data.join("ca.pem").exists() && !dir.path().join("secret").exists());
    // The certificate there, the key missing: the key's path is named.
    let (mut s, _) = shared_ca(dir.path());
    s.ca_files.as_mut().unwrap().key = dir.path().join("pki/missing.key");
    let err = Pki::load_or_init(&data, &s, SystemTime::now()).unwrap_err();
    assert!(err.to_string().contains("pki/missing.key"), "{err}");
}

#[test]
fn a_ca_key_of_another_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = shared_ca(dir.path());
    let other = dir.path().join("other.key");
    std::fs::write(&other, ca().key_pem()).unwrap();
    s.ca_files.as_mut().unwrap().key = other;
    let err = Pki::load_or_init(&dir.path().join("data"), &s, SystemTime::now()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn a_server_certificate_of_another_ca_is_issued_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A data directory whose CA was made there, then a configured CA.
    let own = Pki::load_or_init(&data, &settings(&["localhost"]), SystemTime::now()).unwrap();
    let (s, ca_pem) = shared_ca(dir.path());
    let shared = Pki::load_or_init(&data, &s, SystemTime::now()).unwrap();
    assert_eq!(shared.ca().cert_pem(), ca_pem);
    assert_ne!(shared.server_cert().cert_pem, own.server_cert().cert_pem);
    // Kept from then on.
    let again = Pki::load_or_init(&data, &s, SystemTime::now()).unwrap();
    assert_eq!(again.server_cert().cert_pem, shared.server_cert().cert_pem);
}

#[test]
fn old_cas_are_trusted_and_bad_files_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = ca();
    let old_path = dir.path().join("old-ca.pem");
    std::fs::write(&old_path, old.cert_pem()).unwrap();
    let mut s = settings(&["localhost"]);
    s.old_ca_files = vec![old_path.clone()];
    let pki = Pki::load_or_init(&dir.path().join("data"), &s, SystemTime::now()).unwrap();
    let roots = pki.client_roots();
    assert_eq!(roots.len(), 2);
    assert_eq!(&roots[1], old.cert_der());

    std::fs::write(&old_path, "not a pem").unwrap();
    assert!(Pki::load_or_init(&dir.path().join("data"), &s, SystemTime::now()).is_err());
}

#[test]
fn registration_bundle_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_init(
        &dir.path().join("data"),
        &settings(&["localhost"]),
        SystemTime::now(),
    )
    .unwrap();
    let out = dir.path().join("factory");
    pki.write_registration_bundle(&out, SystemTime::now(), DAY)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("ca.pem")).unwrap(),
        pki.ca().cert_pem()
    );
    let cert = std::fs::read_to_string(out.join("register.pem")).unwrap();
    assert_eq!(
        ClientIdentity::from_der(&der(&cert)).unwrap().role,
        Role::Registration
    );
    let mode = std::fs::metadata(out.join("register.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(KeyPair::from_pem(&std::fs::read_to_string(out.join("register.key")).unwrap()).is_ok());
}
