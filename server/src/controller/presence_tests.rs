//! Presence of a device that uploads its heartbeats in hourly windows
//! (batch format 3 reports the interval), with an injected clock: the full
//! pass, the incremental tracker and the read path agree that it is online
//! between windows and offline once three windows are missed, and its
//! EdgeDevice status is not rewritten by an ordinary window.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::incremental::Tracker;
use super::*;
use crate::device_id::Namespace;
use crate::store::{Contact, SqliteStore, StatusUpdate};

const T0: u64 = 1_750_000_000_000;
const MIN: u64 = 60_000;
const HOUR: u64 = 3_600_000;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

/// An approved device heard from at `T0` in a window that reports
/// `interval` (its heartbeat period is the default, 60 s).
fn device_with_window(interval: Option<u32>) -> SqliteStore {
    let s = SqliteStore::in_memory().unwrap();
    let ns = Namespace::parse("default").unwrap();
    s.enrol(&id("dev-a"), &ns, None, true, T0).unwrap();
    window(&s, T0, interval);
    s
}

fn window(s: &dyn Store, at: u64, interval: Option<u32>) {
    let update = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({"workloads": []}),
        hardware: None,
        seq: None,
    };
    let contact = Contact {
        at_ms: at,
        upload_interval_seconds: interval,
        usage: Default::default(),
    };
    s.ingest_batch(&id("dev-a"), &[], Some(&update), contact)
        .unwrap();
}

fn stored_status(s: &dyn Store) -> serde_json::Value {
    s.get_object("EdgeDevice", "default", "dev-a")
        .unwrap()
        .unwrap()
        .body["status"]
        .clone()
}

fn read_presence(s: &dyn Store, now: u64) -> Presence {
    let device = s.device(&id("dev-a")).unwrap().unwrap();
    device_presence(s, Settings::default(), &device, now).unwrap()
}

/// (full pass, incremental pass, read path) at each time, in order.
fn judged(s: &SqliteStore, times: &[u64]) -> Vec<(Presence, Presence, Presence)> {
    let mut tracker = Tracker::new(std::time::Duration::from_secs(86_400));
    tracker.pass(s, s, Settings::default(), T0).unwrap();
    times
        .iter()
        .map(|&now| {
            let inc = tracker.pass(s, s, Settings::default(), now).unwrap();
            let full = reconcile(s, s, Settings::default(), now).unwrap();
            let one = |r: &Report| {
                Presence::ALL
                    .into_iter()
                    .find(|p| r.presence.get(p) == Some(&1))
                    .unwrap()
            };
            (one(&full), one(&inc), read_presence(s, now))
        })
        .collect()
}

#[test]
fn an_hourly_uploader_is_online_between_windows() {
    let s = device_with_window(Some(3600));
    let times = [
        T0 + 3 * MIN + 1,
        T0 + 2 * HOUR,
        T0 + 3 * HOUR,
        T0 + 3 * HOUR + 1,
    ];
    let on = (Presence::Online, Presence::Online, Presence::Online);
    let off = (Presence::Offline, Presence::Offline, Presence::Offline);
    assert_eq!(judged(&s, &times), [on, on, on, off]);
    assert_eq!(stored_status(&s)["presence"], json!("offline"));
    // Its next window brings it back.
    window(&s, T0 + 3 * HOUR + 10 * MIN, Some(3600));
    let mut tracker = Tracker::new(std::time::Duration::from_secs(86_400));
    tracker
        .pass(&s, &s, Settings::default(), T0 + 3 * HOUR + 11 * MIN)
        .unwrap();
    assert_eq!(stored_status(&s)["presence"], json!("online"));
}

#[test]
fn without_a_reported_interval_the_heartbeat_period_decides() {
    let s = device_with_window(None);
    let times = [T0 + 3 * MIN, T0 + 3 * MIN + 1];
    let on = (Presence::Online, Presence::Online, Presence::Online);
    let off = (Presence::Offline, Presence::Offline, Presence::Offline);
    assert_eq!(judged(&s, &times), [on, off]);
}

#[test]
fn ordinary_windows_do_not_rewrite_the_status() {
    let s = device_with_window(Some(3600));
    let mut tracker = Tracker::new(std::time::Duration::from_secs(86_400));
    tracker.pass(&s, &s, Settings::default(), T0).unwrap();
    // The full pass's own writes (the EdgeDevice it made) are in the feed
    // it read from: the next pass looks at the device once more.
    tracker.pass(&s, &s, Settings::default(), T0 + 1).unwrap();
    let before = stored_status(&s);
    assert_eq!(before["presence"], json!("online"));
    for hour in 1..=5 {
        let at = T0 + hour * HOUR;
        window(&s, at, Some(3600));
        // Passes between windows, where a 60-s period would go offline.
        for now in [at + MIN, at + 5 * MIN, at + 30 * MIN] {
            let r = tracker.pass(&s, &s, Settings::default(), now).unwrap();
            assert_eq!(r.presence.get(&Presence::Online), Some(&1), "at {now}");
            assert_eq!(r.looked_at, 0, "a window of an online device is no work");
        }
        reconcile(&s, &s, Settings::default(), at + 59 * MIN).unwrap();
        assert_eq!(stored_status(&s), before, "hour {hour}");
    }
}

#[test]
fn a_shorter_interval_brings_the_deadline_forward() {
    // Hourly first, then the device moves to a link it uploads on every
    // minute: three minutes of silence after that window are offline, for
    // the tracker too (the interval change is in the change feed).
    let s = device_with_window(Some(3600));
    let mut tracker = Tracker::new(std::time::Duration::from_secs(86_400));
    tracker.pass(&s, &s, Settings::default(), T0).unwrap();
    window(&s, T0 + HOUR, Some(60));
    tracker
        .pass(&s, &s, Settings::default(), T0 + HOUR + 1)
        .unwrap();
    let r = tracker
        .pass(&s, &s, Settings::default(), T0 + HOUR + 3 * MIN + 1)
        .unwrap();
    assert_eq!(r.presence.get(&Presence::Offline), Some(&1));
    assert_eq!(stored_status(&s)["presence"], json!("offline"));
}
