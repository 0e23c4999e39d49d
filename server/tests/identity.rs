//! The device identity lifecycle through the real mTLS listener: a renewal
//! supersedes the old certificate once the new one is used (and not
//! before: a crash between renewal and saving must not brick the device),
//! renewal of an expired certificate is bounded by `renewal_grace_seconds`
//! (then the device enrols again, approved per `auto_approve`), and
//! decommissioning revokes at once — on open connections and resumed TLS
//! sessions too — keeps or purges the data, and makes a later enrolment
//! wait for an operator.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{API, Client, batch, batch_response, issued, log, onboard, raw};
use flotta_proto::payload::Payload;
use flotta_server::clock::ManualClock;
use flotta_server::device_id::DeviceId;
use flotta_server::pki::IssuedCert;
use flotta_server::testing::{TestOptions, TestServer, spawn};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

/// Renew `dev` with `cert` (which must be accepted).
fn renew(s: &TestServer, cert: &IssuedCert, dev: &str) -> IssuedCert {
    let (r, key) = Client::new(s, cert).register_as(dev, dev);
    issued(&r, key)
}

/// `GET data/{dev}/in` with `cert` on a new connection.
fn get(s: &TestServer, cert: &IssuedCert, dev: &str) -> common::Reply {
    Client::new(s, cert).get(&format!("{API}/data/{dev}/in"))
}

fn ctl(s: &TestServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flotta-server"))
        .arg("--admin-addr")
        .arg(s.admin_addr.to_string())
        .args(args)
        .env_remove("RUST_LOG")
        .env("USER", "carol")
        .output()
        .unwrap()
}

fn ctl_ok(s: &TestServer, args: &[&str]) -> String {
    let out = ctl(s, args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn event_messages(s: &TestServer, dev: &str) -> Vec<String> {
    s.store()
        .events(&id(dev), 50)
        .unwrap()
        .iter()
        .filter_map(|e| match Payload::decode(&e.payload) {
            Ok(Payload::Event(ev)) => Some(ev.message),
            _ => None,
        })
        .collect()
}

#[test]
fn a_renewal_supersedes_the_old_certificate_once_the_new_one_is_used() {
    let s = spawn(TestOptions::default()).unwrap();
    let a = onboard(&s, "dev-1");
    assert_eq!(get(&s, &a, "dev-1").status, 200);

    // Renewed, then the device crashed before saving the new certificate:
    // the old one keeps working, and renews again.
    let lost = renew(&s, &a, "dev-1");
    assert_eq!(get(&s, &a, "dev-1").status, 200, "overlap until first use");
    let b = renew(&s, &a, "dev-1");
    assert_eq!(get(&s, &a, "dev-1").status, 200);

    // The first use of the new certificate supersedes the old one.
    let r = Client::new(&s, &b).batch("dev-1", &batch("", vec![log(1, "x")]));
    assert_eq!(batch_response(&r).acked_through, Some(1));
    for (what, old) in [("previous", &a), ("renewed but replaced", &lost)] {
        let r = get(&s, old, "dev-1");
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert!(r.text().contains("superseded"), "{what}: {}", r.text());
        let (r, _) = Client::new(&s, old).register_as("dev-1", "dev-1");
        assert_eq!(r.status, 401, "{what} cannot renew: {}", r.text());
        let r = Client::new(&s, old).batch("dev-1", &batch("", vec![log(2, "y")]));
        assert_eq!(r.status, 401, "{what}");
    }
    assert_eq!(
        s.store().acked_through(&id("dev-1")).unwrap(),
        Some(1),
        "nothing stored with a superseded certificate"
    );
    assert_eq!(get(&s, &b, "dev-1").status, 200);
    // The registration certificate cannot take the device over either.
    let (r, _) = Client::new(&s, &s.registration).register_as("dev-1", "dev-1");
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn expired_certificates_renew_within_the_grace_and_enrol_again_beyond_it() {
    for auto_approve in [true, false] {
        // The server's clock stands 30 days back: certificates it issues
        // look expired to rustls (the verifier lets them reach HTTP), and
        // the HTTP layer judges them by the server's clock.
        let clock = Arc::new(ManualClock::new(SystemTime::now() - 30 * DAY));
        let s = spawn(TestOptions {
            auto_approve,
            clock: clock.clone(),
            device_cert_validity_seconds: HOUR.as_secs(),
            config_toml: "renewal_grace_seconds = 86400\n".into(),
            ..TestOptions::default()
        })
        .unwrap();
        let reg = Client::new(&s, &s.registration);
        assert_eq!(reg.enrol("dev-1").status, 200);
        if !auto_approve {
            s.approve("dev-1").unwrap();
        }
        let (r, key) = reg.register_as("dev-1", "dev-1");
        let a = issued(&r, key);
        assert_eq!(get(&s, &a, "dev-1").status, 200);

        // Expired 12 h ago, within the 1-day grace: it may only renew.
        clock.advance(13 * HOUR);
        assert_eq!(get(&s, &a, "dev-1").status, 401);
        let b = renew(&s, &a, "dev-1");
        assert_eq!(
            get(&s, &b, "dev-1").status,
            200,
            "auto_approve {auto_approve}"
        );

        // Expired more than a day ago: renewal is refused with a clear 401.
        clock.advance(HOUR + DAY + Duration::from_secs(60));
        let (r, _) = Client::new(&s, &b).register_as("dev-1", "dev-1");
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(r.text().contains("renewal_grace_seconds"), "{}", r.text());
        assert!(r.text().contains("enrol again"), "{}", r.text());

        // Enrolling again with the registration certificate starts over,
        // approved according to auto_approve.
        let first = reg.enrol("dev-1").status;
        let (r, key) = reg.register_as("dev-1", "dev-1");
        if auto_approve {
            assert_eq!(first, 208, "re-approved at once");
        } else {
            assert_eq!(first, 200, "pending again");
            assert_eq!(r.status, 404, "not approved: {}", r.text());
            s.approve("dev-1").unwrap();
            assert_eq!(reg.enrol("dev-1").status, 208);
        }
        let c = if auto_approve {
            issued(&r, key)
        } else {
            let (r, key) = reg.register_as("dev-1", "dev-1");
            issued(&r, key)
        };
        assert_eq!(get(&s, &c, "dev-1").status, 200);
        assert_eq!(get(&s, &b, "dev-1").status, 401);
    }
}

/// `GET data/{dev}/in` on an open raw connection.
async fn get_on<S>(conn: &mut S, dev: &str) -> raw::Response
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    raw::send(
        conn,
        &raw::head("GET", &format!("{API}/data/{dev}/in"), &[]),
    )
    .await
    .unwrap();
    raw::read_response(conn).await.expect("a response")
}

#[test]
fn decommission_revokes_at_once_on_open_connections_and_resumed_sessions() {
    let s = spawn(TestOptions::default()).unwrap();
    let cert = onboard(&s, "dev-1");
    let r = Client::new(&s, &cert).batch("dev-1", &batch("", vec![log(1, "kept")]));
    assert_eq!(batch_response(&r).acked_through, Some(1));
    assert!(
        s.store()
            .get_object("EdgeDevice", "default", "dev-1")
            .unwrap()
            .is_some()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = raw::client_config(&s.ca_pem, &cert);
        let mut open = raw::connect_with(s.api_addr, config.clone()).await.unwrap();
        assert_eq!(get_on(&mut open, "dev-1").await.status, 200);
        // A second connection leaves a session ticket for later.
        let mut other = raw::connect_with(s.api_addr, config.clone()).await.unwrap();
        assert_eq!(get_on(&mut other, "dev-1").await.status, 200);
        drop(other);

        let out = ctl_ok(&s, &["decommission", "dev-1", "--actor", "alice"]);
        assert!(out.contains("decommissioned dev-1"), "{out}");

        // The connection opened before is refused on its next request.
        let r = get_on(&mut open, "dev-1").await;
        assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert!(body.contains("decommissioned by \\\"alice\\\""), "{body}");

        // A session resumed from the cache is judged on every request too.
        let mut resumed = raw::connect_with(s.api_addr, config.clone()).await.unwrap();
        assert_eq!(
            resumed.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        );
        assert_eq!(get_on(&mut resumed, "dev-1").await.status, 401);
    });

    // Data kept; objects gone and not recreated; who did it recorded.
    assert_eq!(s.store().acked_through(&id("dev-1")).unwrap(), Some(1));
    let device = s.store().device(&id("dev-1")).unwrap().unwrap();
    assert_eq!(device.decommissioned.unwrap().by, "alice");
    let settings = s.config.controller_settings();
    flotta_server::controller::reconcile(s.store(), s.objects(), settings, 0).unwrap();
    for kind in ["EdgeDevice", "EdgeDeviceSignedRequest"] {
        let o = s.store().get_object(kind, "default", "dev-1").unwrap();
        assert!(o.is_none(), "{kind} recreated");
    }
    let events = event_messages(&s, "dev-1");
    assert!(
        events.iter().any(|m| m.contains("decommissioned by alice")),
        "{events:?}"
    );

    // Enrolling the same id again waits for an operator despite auto_approve.
    let reg = Client::new(&s, &s.registration);
    assert_eq!(reg.enrol("dev-1").status, 200);
    assert_eq!(reg.enrol("dev-1").status, 200, "still pending");
    let (r, _) = reg.register_as("dev-1", "dev-1");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(get(&s, &cert, "dev-1").status, 401);
    s.approve("dev-1").unwrap();
    assert_eq!(reg.enrol("dev-1").status, 208);
    let (r, key) = reg.register_as("dev-1", "dev-1");
    let fresh = issued(&r, key);
    assert_eq!(get(&s, &fresh, "dev-1").status, 200);
    assert_eq!(
        get(&s, &cert, "dev-1").status,
        401,
        "the old one stays revoked"
    );
}

#[test]
fn deleting_the_edgedevice_decommissions_and_purge_deletes_the_data() {
    let s = spawn(TestOptions::default()).unwrap();
    let one = onboard(&s, "dev-1");
    let two = onboard(&s, "dev-2");
    for (dev, cert) in [("dev-1", &one), ("dev-2", &two)] {
        let r = Client::new(&s, cert).batch(dev, &batch("", vec![log(1, "x")]));
        assert_eq!(batch_response(&r).acked_through, Some(1));
    }
    let out = ctl_ok(&s, &["delete", "ed", "dev-1", "--actor", "bob"]);
    assert!(out.contains("edgedevice/dev-1 decommissioned"), "{out}");
    assert_eq!(get(&s, &one, "dev-1").status, 401);
    assert_eq!(s.store().acked_through(&id("dev-1")).unwrap(), Some(1));
    let events = event_messages(&s, "dev-1");
    assert!(events.iter().any(|m| m.contains("by bob")), "{events:?}");

    // --actor defaults to the local user; --purge deletes the data.
    ctl_ok(&s, &["decommission", "dev-2", "--purge"]);
    assert_eq!(get(&s, &two, "dev-2").status, 401);
    assert_eq!(s.store().acked_through(&id("dev-2")).unwrap(), None);
    let events = event_messages(&s, "dev-2");
    assert_eq!(events.len(), 1, "only the decommissioning: {events:?}");
    assert!(events[0].contains("by carol") && events[0].contains("purged"));

    let out = ctl(&s, &["decommission", "nobody"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not enrolled"), "{err}");
    assert_eq!(get(&s, &onboard(&s, "dev-3"), "dev-3").status, 200);
}
