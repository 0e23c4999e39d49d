//! Flotta JSON heartbeats over real mTLS: events stored once (a retry adds
//! nothing) and listed with batch events on the admin listener; wrongly typed
//! content refused with the field's path; only JSON content types accepted.
#![allow(clippy::unwrap_used)]

mod common;

use common::{API, Client, onboard};
use flotta_server::device_id::DeviceId;
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::{Value, json};

fn server() -> (TestServer, Client) {
    let s = spawn(TestOptions::default()).unwrap();
    let cert = onboard(&s, "dev-1");
    let dev = Client::new(&s, &cert);
    (s, dev)
}

fn dev1() -> DeviceId {
    DeviceId::parse("dev-1").unwrap()
}

fn heartbeat(sent: &str, content: Value) -> Value {
    json!({"type": "data", "directive": "heartbeat", "message_id": "m-1", "sent": sent, "content": content})
}

fn admin_events(s: &TestServer) -> Value {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("http://{}/apis/devices/dev-1/events", s.admin_addr),
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn heartbeat_events_are_stored_once_and_listed() {
    let (s, dev) = server();
    let path = format!("{API}/data/dev-1/out");
    let events = json!([
        {"reason": "Started", "message": "workload w started", "type": "info"},
        {"reason": "Crashed", "message": "workload w exited 1", "type": "warn"}
    ]);
    let hb = heartbeat(
        "2024-05-01T10:00:00.5Z",
        json!({"status": "up", "workloads": null, "events": events}),
    );
    assert_eq!(dev.post_json(&path, &hb).status, 200);
    // The same heartbeat again (a retry after a lost answer).
    assert_eq!(dev.post_json(&path, &hb).status, 200);
    let stored = s.store().events(&dev1(), 10).unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0].at_ms, 1_714_557_600_500, "timed by `sent`");

    // Another heartbeat with the same event is another occurrence.
    let again = heartbeat(
        "2024-05-01T10:01:00Z",
        json!({"status": "up", "events": [events[1].clone()]}),
    );
    assert_eq!(dev.post_json(&path, &again).status, 200);
    let listed = admin_events(&s);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{listed}");
    // The fields `describe` reads, as they always were, and the feed's.
    let want = json!({"time": "2024-05-01T10:00:00Z", "type": "warn", "reason": "Crashed",
        "message": "workload w exited 1", "device": "dev-1", "level": "warn"});
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&items[1][k], v, "{k}: {listed}");
    }
    assert!(items[1]["received"].is_string(), "{listed}");
    assert_eq!(items[2]["time"], "2024-05-01T10:01:00Z");
}

#[test]
fn wrongly_typed_content_is_refused_with_its_path() {
    let (s, dev) = server();
    let path = format!("{API}/data/dev-1/out");
    let good = "2024-05-01T10:00:00Z";
    let cases = [
        (
            heartbeat(good, json!({"workloads": "x"})),
            "content.workloads",
        ),
        (heartbeat(good, json!({"events": "x"})), "content.events"),
        (
            heartbeat(good, json!({"events": [{"reason": "r", "type": "loud"}]})),
            "content.events[0].type",
        ),
        (
            heartbeat(
                good,
                json!({"workloads": [{"name": "w", "last_data_upload": "soon"}]}),
            ),
            "content.workloads[0].last_data_upload",
        ),
        (
            heartbeat(good, json!({"status": "sleepy"})),
            "content.status",
        ),
        (heartbeat("yesterday", json!({"status": "up"})), "sent"),
        (
            json!({"directive": "heartbeat", "version": "one", "content": {}}),
            "version",
        ),
    ];
    for (body, field) in cases {
        let r = dev.post_json(&path, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let message = r.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&format!("{field}: ")),
            "{field}: {message}"
        );
        assert!(!message.contains("Some("), "{message}");
    }
    let device = s.store().device(&dev1()).unwrap().unwrap();
    assert_eq!(device.last_heartbeat, None, "nothing applied");
    assert!(s.store().events(&dev1(), 10).unwrap().is_empty());
}

#[test]
fn only_json_content_types_are_accepted() {
    let (_s, dev) = server();
    let body = heartbeat("2024-05-01T10:00:00Z", json!({"status": "up"})).to_string();
    for (path, content_type, want) in [
        ("data/dev-1/out", "application/json", 200),
        ("data/dev-1/out", "application/json; charset=utf-8", 200),
        ("data/dev-1/out", "Application/JSON", 200),
        ("data/dev-1/out", "text/plain", 415),
        ("data/dev-1/out", "application/x-www-form-urlencoded", 415),
        ("control/dev-1/out", "application/json;charset=UTF-8", 200),
        ("control/dev-1/out", "text/json", 415),
    ] {
        let r = dev.post(&format!("{API}/{path}"), content_type, body.as_bytes());
        assert_eq!(r.status, want, "{path} {content_type}: {}", r.text());
        if want == 415 {
            assert!(r.text().contains("application/json"), "{}", r.text());
        }
    }
}
