//! Authentication and roles without HTTP: tokens, certificates (expired,
//! revoked, not admin), the open loopback listener, and the role each
//! request needs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue, Method, header};

use super::*;
use crate::clock::ManualClock;
use crate::config::AdminToken;
use crate::pki::{CertificateAuthority, Validity};

fn config(tokens: &[(&str, AdminRole, &str)], certs: bool) -> Config {
    Config {
        admin_tokens: tokens
            .iter()
            .map(|(name, role, token)| AdminToken {
                name: (*name).into(),
                role: *role,
                sha256: token::hash_hex(token),
            })
            .collect(),
        admin_client_certs: certs,
        ..Config::default()
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn clock() -> (Arc<ManualClock>, SystemTime) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    (Arc::new(ManualClock::new(now)), now)
}

#[test]
fn open_only_on_loopback_without_credentials() {
    let (clock, _) = clock();
    let open = AdminAuth::from_config(&Config::default(), clock.clone());
    assert!(open.is_open());
    let p = open.authenticate(&HeaderMap::new(), None).unwrap();
    assert_eq!(
        (p.name.as_str(), p.role, p.via),
        ("local", AdminRole::Admin, Via::Local)
    );
    // A wrong token is refused even where no token is needed.
    assert!(matches!(
        open.authenticate(&bearer("nope"), None),
        Err(Denied::Unauthenticated(_))
    ));
    let closed =
        AdminAuth::from_config(&config(&[("alice", AdminRole::Admin, "t1")], false), clock);
    assert!(!closed.is_open());
    let e = closed.authenticate(&HeaderMap::new(), None).unwrap_err();
    assert!(matches!(e, Denied::Unauthenticated(ref m) if m.contains("credentials required")));
}

#[test]
fn tokens_from_the_header_or_the_cookie_give_their_role() {
    let (clock, _) = clock();
    let auth = AdminAuth::from_config(
        &config(
            &[
                ("alice", AdminRole::Admin, "flotta_a"),
                ("viewer", AdminRole::ReadOnly, "flotta_v"),
            ],
            false,
        ),
        clock,
    );
    let p = auth.authenticate(&bearer("flotta_a"), None).unwrap();
    assert_eq!(
        (p.name.as_str(), p.role, p.via),
        ("alice", AdminRole::Admin, Via::Token)
    );
    let mut cookie = HeaderMap::new();
    cookie.insert(
        header::COOKIE,
        HeaderValue::from_static("theme=dark; flotta_token=flotta_v"),
    );
    let p = auth.authenticate(&cookie, None).unwrap();
    assert_eq!((p.name.as_str(), p.role), ("viewer", AdminRole::ReadOnly));
    let mut basic = HeaderMap::new();
    basic.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic YTpi"),
    );
    assert!(matches!(
        auth.authenticate(&basic, None),
        Err(Denied::Unauthenticated(_))
    ));
}

fn admin_identity(
    ca: &CertificateAuthority,
    read_only: bool,
    not_before: SystemTime,
) -> crate::pki::ClientIdentity {
    let cert = ca
        .issue_admin_cert(
            "ops",
            read_only,
            Validity::starting_at(not_before, Duration::from_secs(3600)).unwrap(),
        )
        .unwrap();
    crate::pki::ClientIdentity::from_pem(&cert.cert_pem).unwrap()
}

#[test]
fn admin_certificates_expired_revoked_disabled_or_not_admin() {
    let (clock, now) = clock();
    let ca = CertificateAuthority::generate(
        Validity::starting_at(
            now - Duration::from_secs(60),
            Duration::from_secs(86_400 * 365),
        )
        .unwrap(),
    )
    .unwrap();
    let good = admin_identity(&ca, false, now);
    let viewer = admin_identity(&ca, true, now);
    let expired = admin_identity(&ca, false, now - Duration::from_secs(7200));
    let mut with_certs = config(&[], true);
    let auth = AdminAuth::from_config(&with_certs, clock.clone());
    let p = auth.authenticate(&HeaderMap::new(), Some(&good)).unwrap();
    assert_eq!((p.name.as_str(), p.role), ("ops", AdminRole::Admin));
    assert_eq!(p.via, Via::Certificate(good.serial.clone()));
    let p = auth.authenticate(&HeaderMap::new(), Some(&viewer)).unwrap();
    assert_eq!(p.role, AdminRole::ReadOnly);
    let e = auth
        .authenticate(&HeaderMap::new(), Some(&expired))
        .unwrap_err();
    assert!(
        matches!(e, Denied::Unauthenticated(ref m) if m.contains("expired")),
        "{e}"
    );
    // A device certificate is no admin.
    let device = ca
        .issue_device_cert(
            &crate::device_id::DeviceId::parse("dev-1").unwrap(),
            &crate::device_id::Namespace::parse("default").unwrap(),
            Validity::starting_at(now, Duration::from_secs(3600)).unwrap(),
        )
        .unwrap();
    let device = crate::pki::ClientIdentity::from_pem(&device.cert_pem).unwrap();
    assert!(matches!(
        auth.authenticate(&HeaderMap::new(), Some(&device)),
        Err(Denied::Forbidden(_))
    ));
    // Revoked by serial.
    with_certs.admin_revoked_serials = vec![good.serial.clone()];
    let auth = AdminAuth::from_config(&with_certs, clock.clone());
    let e = auth
        .authenticate(&HeaderMap::new(), Some(&good))
        .unwrap_err();
    assert!(
        matches!(e, Denied::Unauthenticated(ref m) if m.contains("revoked")),
        "{e}"
    );
    // Certificates not accepted.
    let auth = AdminAuth::from_config(&config(&[("a", AdminRole::Admin, "t")], false), clock);
    assert!(matches!(
        auth.authenticate(&HeaderMap::new(), Some(&viewer)),
        Err(Denied::Unauthenticated(_))
    ));
}

#[test]
fn roles_by_method_and_path() {
    assert_eq!(required_role(&Method::GET, "/healthz"), None);
    assert_eq!(required_role(&Method::GET, "/readyz"), None);
    assert_eq!(
        required_role(&Method::GET, "/metrics"),
        Some(AdminRole::ReadOnly)
    );
    assert_eq!(
        required_role(&Method::GET, "/apis/edgedevices"),
        Some(AdminRole::ReadOnly)
    );
    assert_eq!(
        required_role(&Method::GET, "/apis/audit"),
        Some(AdminRole::Admin)
    );
    assert_eq!(
        required_role(&Method::POST, "/apis/apply"),
        Some(AdminRole::Admin)
    );
    assert_eq!(
        required_role(&Method::DELETE, "/apis/x/y/z"),
        Some(AdminRole::Admin)
    );
    assert_eq!(
        required_role(&Method::PUT, "/healthzz"),
        Some(AdminRole::Admin)
    );
    assert!(AdminRole::ReadOnly < AdminRole::Admin);
}
