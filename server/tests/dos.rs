//! Denial of service with the registration certificate (issue 9): stalled
//! and trickling bodies, oversized `Content-Length`, and connection
//! budgets per certificate class and per client, through the real
//! listeners with small budgets and short deadlines.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::raw::{self, Response};
use common::{API, Client, batch, heartbeat, issued, onboard};
use flotta_proto::batch::{BATCH_CONTENT_TYPE, batch_path};
use flotta_proto::payload::DeviceStatus;
use flotta_server::pki::IssuedCert;
use flotta_server::testing::{TestOptions, TestServer, spawn};
use tokio::time::timeout;

/// The content type of Flotta's JSON routes (anything else is refused with 415 before the body).
const JSON: &str = "content-type: application/json";

/// Small budgets; deadlines short enough for a test, long enough for a busy CI box.
const SMALL: &str = "
max_connections = 12
max_registration_connections = 4
max_other_connections = 2
max_connections_per_client = 2
max_tls_handshakes = 64
tls_handshake_timeout_seconds = 5
http_header_read_timeout_seconds = 5
";

fn server(deadlines: &str) -> TestServer {
    spawn(TestOptions {
        config_toml: format!("{SMALL}{deadlines}"),
        ..TestOptions::default()
    })
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn metric(server: &TestServer, line_prefix: &str) -> u64 {
    server
        .metrics()
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map_or(0, |v| v.trim().parse().unwrap_or(0))
}

/// Wait (up to 10 s) until `metric` satisfies `ok`.
async fn wait_metric(server: &TestServer, line_prefix: &str, ok: impl Fn(u64) -> bool) {
    let start = Instant::now();
    while !ok(metric(server, line_prefix)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{line_prefix} stayed wrong:\n{}",
            server.metrics().encode()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One heartbeat batch from `id` on a fresh connection: the status and how long it took.
async fn honest_batch(server: &TestServer, cert: &IssuedCert, id: &str) -> (u16, Duration) {
    let start = Instant::now();
    let body = batch("", vec![heartbeat(1, DeviceStatus::Up)]).encode();
    let exchange = async {
        let mut s = raw::connect(server, cert).await.unwrap();
        let length = format!("content-length: {}", body.len());
        let content_type = format!("content-type: {BATCH_CONTENT_TYPE}");
        let head = raw::head("POST", &batch_path(id), &[&length, &content_type]);
        raw::send(&mut s, &[head, body.clone()].concat())
            .await
            .unwrap();
        raw::read_response(&mut s).await
    };
    let response = timeout(Duration::from_secs(10), exchange).await;
    let status = response.ok().flatten().map_or(0, |r| r.status);
    (status, start.elapsed())
}

#[test]
fn stalled_bodies_with_the_registration_certificate_do_not_starve_devices() {
    let server = server(
        "http_request_timeout_seconds = 8
http_body_min_rate_bytes_per_second = 1
http_body_min_rate_grace_seconds = 6",
    );
    let device = onboard(&server, "honest-1");
    let registration = server.registration.clone();
    runtime().block_on(async {
        // The attack: more stalled requests than the whole table holds,
        // each with headers announcing 100 bytes and one byte of body.
        let attackers = 20;
        let mut held = Vec::new();
        for i in 0..attackers {
            let (registration, ca) = (registration.clone(), server.ca_pem.clone());
            let (addr, path) = (server.api_addr, format!("{API}/data/attacker-{i}/out"));
            let head = raw::head("POST", &path, &["content-length: 100", JSON]);
            held.push(tokio::spawn(async move {
                let mut s = raw::connect_to(addr, &ca, &registration).await.unwrap();
                raw::send(&mut s, &[head, b"{".to_vec()].concat()).await.unwrap();
                let sent = Instant::now();
                let response = raw::read_response(&mut s).await;
                raw::until_closed(&mut s).await;
                (response.map(|r: Response| (r.status, r.headers)), sent.elapsed())
            }));
        }
        let refused = r#"flotta_connections_refused_total{listener="api",class="registration",reason="class_full"} "#;
        let open = r#"flotta_connections{listener="api",class="registration"} "#;
        let in_place = || metric(&server, open) == 4 && metric(&server, refused) == attackers - 4;
        let start = Instant::now();
        while !in_place() && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // An honest device is served at once, while the attack holds its share.
        let (status, took) = honest_batch(&server, &device, "honest-1").await;
        eprintln!("honest device during the attack: HTTP {status} in {took:?}");
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(in_place(), "the attack was in place:\n{}", server.metrics().encode());

        // Every attacker was refused (503, Retry-After) or cut by the deadline (408).
        let mut outcomes = Vec::new();
        for h in held {
            let (response, took) = timeout(Duration::from_secs(20), h).await.unwrap().unwrap();
            let (status, headers) = response.expect("every attacker gets an answer");
            if status == 503 {
                assert!(headers.contains("retry-after:"), "{headers}");
            } else {
                assert_eq!(status, 408, "{headers}");
                assert!(took < Duration::from_secs(14), "cut after {took:?}");
            }
            outcomes.push(status);
        }
        assert_eq!(outcomes.iter().filter(|s| **s == 408).count(), 4);
        // The slots are free again.
        wait_metric(&server, open, |n| n == 0).await;
    });
}

#[test]
fn a_trickling_body_is_cut_by_the_minimum_rate_long_before_the_deadline() {
    let server = server(
        "http_request_timeout_seconds = 60
http_body_min_rate_bytes_per_second = 16
http_body_min_rate_grace_seconds = 2",
    );
    let registration = server.registration.clone();
    runtime().block_on(async {
        let s = raw::connect(&server, &registration).await.unwrap();
        let (mut rd, mut wr) = tokio::io::split(s);
        let path = format!("{API}/data/trickle-1/out");
        raw::send(
            &mut wr,
            &raw::head("POST", &path, &["content-length: 1000", JSON]),
        )
        .await
        .unwrap();
        let start = Instant::now();
        // Two bytes a second: well under 16 B/s, but never silent.
        let trickle = tokio::spawn(async move {
            for _ in 0..60 {
                if raw::send(&mut wr, b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let response = timeout(Duration::from_secs(20), raw::read_response(&mut rd))
            .await
            .expect("cut before 20 s")
            .expect("a response");
        let took = start.elapsed();
        eprintln!("trickle cut with HTTP {} after {took:?}", response.status);
        assert_eq!(response.status, 408);
        assert!(took < Duration::from_secs(15), "took {took:?}");
        timeout(Duration::from_secs(10), raw::until_closed(&mut rd))
            .await
            .unwrap();
        trickle.abort();
    });
}

#[test]
fn an_oversized_content_length_is_refused_before_any_body_is_read() {
    let server = server("http_request_timeout_seconds = 60");
    let device = onboard(&server, "big-1");
    let registration = server.registration.clone();
    let admin = server.admin_addr;
    runtime().block_on(async {
        let too_big = "content-length: 100000000";
        let batch = format!("content-type: {BATCH_CONTENT_TYPE}");
        let cases = [
            (&registration, format!("{API}/data/big-1/out"), JSON),
            (&device, format!("{API}/control/big-1/out"), JSON),
            (&device, batch_path("big-1"), batch.as_str()),
        ];
        for (cert, path, ct) in cases {
            let mut s = raw::connect(&server, cert).await.unwrap();
            raw::send(&mut s, &raw::head("POST", &path, &[too_big, ct]))
                .await
                .unwrap();
            let start = Instant::now();
            let r = timeout(Duration::from_secs(5), raw::read_response(&mut s))
                .await
                .expect("answered without waiting for the body")
                .unwrap();
            assert_eq!((r.status, path.as_str()), (413, path.as_str()));
            assert!(start.elapsed() < Duration::from_secs(2));
        }
        let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
        raw::send(&mut s, &raw::head("POST", "/apis/apply", &[too_big]))
            .await
            .unwrap();
        let r = timeout(Duration::from_secs(5), raw::read_response(&mut s))
            .await
            .expect("the admin listener answers without waiting for the body")
            .unwrap();
        assert_eq!(r.status, 413);
    });
}

#[test]
fn one_device_cannot_hold_more_than_its_connections() {
    let server = server("");
    let greedy = onboard(&server, "greedy-1");
    let other = onboard(&server, "other-1");
    runtime().block_on(async {
        let get = |id: &str| raw::head("GET", &format!("{API}/control/{id}/in"), &[]);
        let mut kept = Vec::new();
        for _ in 0..2 {
            let mut s = raw::connect(&server, &greedy).await.unwrap();
            raw::send(&mut s, &get("greedy-1")).await.unwrap();
            assert_eq!(raw::read_response(&mut s).await.unwrap().status, 200);
            kept.push(s);
        }
        let mut third = raw::connect(&server, &greedy).await.unwrap();
        raw::send(&mut third, &get("greedy-1")).await.unwrap();
        let r = raw::read_response(&mut third).await.unwrap();
        assert_eq!(r.status, 503);
        assert!(r.headers.contains("retry-after:"), "{}", r.headers);
        let refused = r#"flotta_connections_refused_total{listener="api",class="device",reason="client_full"} "#;
        assert_eq!(metric(&server, refused), 1);

        // Another device is not affected.
        let (status, _) = honest_batch(&server, &other, "other-1").await;
        assert_eq!(status, 200);

        // Once the greedy device closes one, its retry is served.
        drop(kept.pop());
        let start = Instant::now();
        loop {
            let mut s = raw::connect(&server, &greedy).await.unwrap();
            raw::send(&mut s, &get("greedy-1")).await.unwrap();
            match raw::read_response(&mut s).await.map(|r| r.status) {
                Some(200) => break,
                other => assert!(start.elapsed() < Duration::from_secs(10), "{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// A stolen board's old certificate, superseded by a renewal, is refused on
/// every request but still completes its handshake: it must not be able to
/// hold the connections the real board's current certificate needs (the
/// per-client cap counts certificates, not device ids).
#[test]
fn a_superseded_certificate_cannot_use_up_the_current_ones_connections() {
    let server = server("");
    let old = onboard(&server, "board-1");
    let (reply, key) = Client::new(&server, &old).register_as("board-1", "board-1");
    let current = issued(&reply, key);
    let path = format!("{API}/control/board-1/in");
    // Its first use makes the new certificate current; the old one is superseded.
    assert_eq!(Client::new(&server, &current).get(&path).status, 200);
    assert_eq!(Client::new(&server, &old).get(&path).status, 401);
    runtime().block_on(async {
        // The thief holds as many connections as one client may, sending nothing.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(raw::connect(&server, &old).await.unwrap());
        }
        let open = r#"flotta_connections{listener="api",class="device"} "#;
        wait_metric(&server, open, |n| n >= 2).await;
        // The real board is still served.
        let mut s = raw::connect(&server, &current).await.unwrap();
        raw::send(&mut s, &raw::head("GET", &path, &[]))
            .await
            .unwrap();
        let status = raw::read_response(&mut s).await.map(|r| r.status);
        assert_eq!(status, Some(200));
        drop(held);
    });
}

#[test]
fn the_admin_listener_has_a_connection_cap_and_a_header_deadline() {
    let server = spawn(TestOptions {
        config_toml: "max_admin_connections = 2\nhttp_header_read_timeout_seconds = 2\n".into(),
        ..TestOptions::default()
    })
    .unwrap();
    let admin = server.admin_addr;
    runtime().block_on(async {
        let healthz = || async {
            let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
            raw::send(&mut s, &raw::head("GET", "/healthz", &[])).await.unwrap();
            raw::read_response(&mut s).await.map(|r| r.status)
        };
        // Two clients that never finish their headers hold the listener...
        let mut stalled = Vec::new();
        for _ in 0..2 {
            let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
            raw::send(&mut s, b"GET /healthz HTTP/1.1\r\n").await.unwrap();
            stalled.push(s);
        }
        let open = r#"flotta_connections{listener="admin",class="admin"} "#;
        wait_metric(&server, open, |n| n == 2).await;
        let refused = r#"flotta_connections_refused_total{listener="admin",class="admin",reason="listener_full"} "#;
        let start = Instant::now();
        // ...so a third is refused until the header deadline closes them.
        let mut first = None;
        loop {
            let status = healthz().await;
            first.get_or_insert(status);
            if status == Some(200) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(first, Some(Some(503)));
        assert!(metric(&server, refused) >= 1);
        for mut s in stalled {
            timeout(Duration::from_secs(5), raw::until_closed(&mut s))
                .await
                .unwrap();
        }
    });
}
