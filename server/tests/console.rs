//! The console over HTTP (no browser): signing in and out, where a
//! browser without a cookie is sent, the cookie's attributes, the
//! same-origin rule for changes made with the cookie, roles, the pages'
//! content for a real device, static files without credentials, and clear
//! errors for bad or unknown devices.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, batch, heartbeat, log, onboard};
use flotta_proto::payload::DeviceStatus;
use flotta_server::admin_auth::token::hash_hex;
use flotta_server::testing::{TestOptions, TestServer, spawn};

const ADMIN: &str = "flotta_console-admin";
const VIEWER: &str = "flotta_console-viewer";

fn server() -> TestServer {
    spawn(TestOptions {
        auto_approve: false,
        config_toml: format!(
            "[[admin_tokens]]\nname = \"alice\"\nrole = \"admin\"\nsha256 = \"{}\"\n\
             [[admin_tokens]]\nname = \"victor\"\nrole = \"read-only\"\nsha256 = \"{}\"\n",
            hash_hex(ADMIN),
            hash_hex(VIEWER)
        ),
        ..TestOptions::default()
    })
    .unwrap()
}

/// An agent that follows no redirect and keeps no cookie.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

struct Page {
    status: u16,
    location: String,
    set_cookie: String,
    body: String,
}

fn get(s: &TestServer, path: &str, cookie: Option<&str>) -> Page {
    let mut req = agent().get(format!("http://{}{path}", s.admin_addr));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("flotta_token={c}"));
    }
    page(req.call().unwrap())
}

fn post(
    s: &TestServer,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &str,
) -> Page {
    let mut req = agent().post(format!("http://{}{path}", s.admin_addr));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("flotta_token={c}"));
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    page(
        req.content_type("application/x-www-form-urlencoded")
            .send(form)
            .unwrap(),
    )
}

fn page(mut r: ureq::http::Response<ureq::Body>) -> Page {
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (location, set_cookie) = (header("location"), header("set-cookie"));
    Page {
        status: r.status().as_u16(),
        location,
        set_cookie,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

#[test]
fn sign_in_cookie_and_sign_out() {
    let s = server();
    let p = get(&s, "/ui/devices/dev-1?range=1d", None);
    assert_eq!(p.status, 303);
    assert_eq!(p.location, "/ui/login?next=%2Fui%2Fdevices%2Fdev-1");
    let p = get(&s, "/", None);
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/login?next=%2F"));
    // The sign-in page and the static files need no credentials.
    let p = get(&s, "/ui/login", None);
    assert_eq!(p.status, 200);
    assert!(p.body.contains("name=\"token\""), "{}", p.body);
    for (file, kind) in [("console.css", "text/css"), ("console.js", "EventSource")] {
        let p = get(&s, &format!("/ui/static/{file}"), None);
        assert_eq!(p.status, 200, "{file}");
        assert!(p.body.contains(kind) || file.ends_with("css"), "{file}");
    }
    assert_eq!(get(&s, "/ui/static/other.js", None).status, 404);

    let p = post(
        &s,
        "/ui/login",
        None,
        None,
        "token=flotta_wrong&next=%2Fui%2F",
    );
    assert_eq!((p.status, p.set_cookie.as_str()), (303, ""));
    assert!(
        p.location.starts_with("/ui/login?failed=1"),
        "{}",
        p.location
    );
    let p = post(
        &s,
        "/ui/login",
        None,
        None,
        &format!("token={ADMIN}&next=%2Fui%2Fapprovals"),
    );
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/approvals"));
    let token = format!("flotta_token={ADMIN}");
    for part in [
        token.as_str(),
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(p.set_cookie.contains(part), "{}", p.set_cookie);
    }
    assert!(!p.set_cookie.contains("Secure"), "plain HTTP on loopback");
    // Somewhere else than the console is not a place to return to.
    let p = post(
        &s,
        "/ui/login",
        None,
        None,
        &format!("token={ADMIN}&next=https%3A%2F%2Fevil.example%2F"),
    );
    assert_eq!(p.location, "/ui/");
    let p = get(&s, "/ui/", Some(ADMIN));
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("<span id=\"who\">alice</span>"),
        "{}",
        p.body
    );
    let p = post(
        &s,
        "/ui/logout",
        Some(ADMIN),
        Some("http://evil.example"),
        "",
    );
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/login"));
    assert!(p.set_cookie.contains("Max-Age=0"), "{}", p.set_cookie);
}

#[test]
fn approving_needs_the_admin_role_and_our_own_origin() {
    let s = server();
    let reg = Client::new(&s, &s.registration);
    assert_eq!(reg.enrol("dev-p").status, 200);
    let origin = format!("http://{}", s.admin_addr);
    let approvals = get(&s, "/ui/approvals", Some(VIEWER));
    assert!(
        approvals.body.contains("data-device=\"dev-p\""),
        "{}",
        approvals.body
    );
    assert!(
        !approvals.body.contains("button class=\"approve\""),
        "no button for read-only"
    );
    let p = post(
        &s,
        "/ui/devices/dev-p/approve",
        Some(VIEWER),
        Some(&origin),
        "",
    );
    assert_eq!(p.status, 403, "{}", p.body);
    // The admin's cookie from another origin, or with no origin at all.
    assert_eq!(
        post(
            &s,
            "/ui/devices/dev-p/approve",
            Some(ADMIN),
            Some("http://evil.example"),
            ""
        )
        .status,
        403
    );
    assert_eq!(
        post(&s, "/ui/devices/dev-p/approve", Some(ADMIN), None, "").status,
        403
    );
    assert!(
        get(&s, "/ui/approvals", Some(ADMIN))
            .body
            .contains("data-device=\"dev-p\"")
    );
    let p = post(
        &s,
        "/ui/devices/dev-p/approve",
        Some(ADMIN),
        Some(&origin),
        "",
    );
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/approvals"));
    let after = get(&s, "/ui/approvals", Some(ADMIN));
    assert!(
        !after.body.contains("data-device=\"dev-p\""),
        "{}",
        after.body
    );
    assert!(after.body.contains("No device is waiting"));
    let p = post(
        &s,
        "/ui/devices/nobody/approve",
        Some(ADMIN),
        Some(&origin),
        "",
    );
    assert_eq!(p.status, 404);
    // The audit page (admin only): the viewer's refusal, the admin's two
    // refusals from elsewhere, the approval, the unknown device.
    let audit = get(&s, "/ui/audit", Some(ADMIN));
    assert_eq!(audit.status, 200);
    assert!(
        audit.body.contains("approved dev-p (console)"),
        "{}",
        audit.body
    );
    assert_eq!(
        audit
            .body
            .matches("<code>POST /ui/devices/dev-p/approve</code>")
            .count(),
        4,
        "{}",
        audit.body
    );
    assert_eq!(
        audit.body.matches("must come from the console").count(),
        2,
        "{}",
        audit.body
    );
    assert!(audit.body.contains(">victor<") && audit.body.contains(">alice<"));
    assert_eq!(get(&s, "/ui/audit", Some(VIEWER)).status, 403);
    assert!(
        !get(&s, "/ui/", Some(VIEWER))
            .body
            .contains("href=\"/ui/audit\"")
    );
    assert!(
        get(&s, "/ui/", Some(ADMIN))
            .body
            .contains("href=\"/ui/audit\"")
    );
}

#[test]
fn pages_show_a_real_device() {
    let s = spawn(TestOptions::default()).unwrap();
    let cert = onboard(&s, "dev-1");
    let dev = Client::new(&s, &cert);
    let r = dev.batch(
        "dev-1",
        &batch(
            "",
            vec![
                log(1, "hello from the agent"),
                heartbeat(2, DeviceStatus::Up),
                common::event(3, "DoorOpened", "cabinet <door> opened"),
            ],
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The open loopback listener: no credentials.
    let fleet = get(&s, "/ui/", None);
    assert_eq!(fleet.status, 200);
    assert!(
        fleet.body.contains("<b id=\"count-total\">1</b>"),
        "{}",
        fleet.body
    );
    assert!(fleet.body.contains("data-device=\"dev-1\""));
    let none = get(&s, "/ui/?presence=offline", None);
    assert!(!none.body.contains("data-device=\"dev-1\""));
    assert!(none.body.contains("0 matching"));
    let d = get(&s, "/ui/devices/dev-1", None);
    assert_eq!(d.status, 200);
    for want in [
        "hello from the agent",
        "DoorOpened",
        "cabinet &lt;door&gt; opened",
        "data-stream=\"/apis/events/stream?device=dev-1\"",
        "expires",
        "<svg class=\"chart\"",
    ] {
        assert!(d.body.contains(want), "{want}:\n{}", d.body);
    }
    // Its traffic today: one TLS window (a full handshake), the batch's bytes.
    assert!(d.body.contains("id=\"link-days\""), "{}", d.body);
    let tls = d.body.split("id=\"tls-handshakes\">").nth(1).unwrap();
    assert!(tls.starts_with("1 full, 0 resumed"), "{tls}");
    let per_day = d.body.split("id=\"per-day\">").nth(1).unwrap();
    assert!(per_day.starts_with("1 windows, 0 frames, "), "{per_day}");
    let warn_only = get(&s, "/ui/devices/dev-1?level=warn", None);
    assert!(!warn_only.body.contains("hello from the agent"));
    assert_eq!(get(&s, "/ui/devices/nobody", None).status, 404);
    let bad = get(&s, "/ui/devices/NOT_AN_ID", None);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("device id"), "{}", bad.body);
    // A workload placed on dev-1 by name, and one by a selector nobody matches.
    let manifest = "apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: {name: cam, namespace: default}
spec:
  device: dev-1
  type: pod
  pod:
    spec:
      containers: [{name: c, image: quay.io/example/cam:1}]
---
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: {name: far, namespace: default}
spec:
  deviceSelector: {matchLabels: {site: mars}}
  type: pod
  pod:
    spec:
      containers: [{name: c, image: quay.io/example/far:1}]
";
    let r = agent()
        .post(format!("http://{}/apis/apply", s.admin_addr))
        .content_type("application/yaml")
        .send(manifest)
        .unwrap();
    assert_eq!(r.status(), 200);
    let w = get(&s, "/ui/workloads", None);
    assert_eq!(w.status, 200);
    let cam = w.body.split("data-workload=\"cam\"").nth(1).unwrap();
    let cam = cam.split("data-workload=").next().unwrap();
    assert!(
        cam.contains("quay.io/example/cam:1") && cam.contains(">dev-1<"),
        "{}",
        w.body
    );
    assert!(cam.contains("assigned") || cam.contains("running"), "{cam}");
    let far = w.body.split("data-workload=\"far\"").nth(1).unwrap();
    assert!(far.contains("placed on no device"), "{far}");
}
