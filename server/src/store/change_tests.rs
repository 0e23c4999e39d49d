//! The change feed (`changes.rs`) on both backends: what marks a device or
//! an object and what does not, the controller's wake-on-contact flag, and
//! changes made through another handle (as another replica would).
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::test_backends::{Backend, both_backends};
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn ns() -> Namespace {
    Namespace::parse("default").unwrap()
}

fn beat(workloads: Value, n: u64) -> StatusUpdate {
    StatusUpdate {
        status: "up".into(),
        heartbeat: json!({"uptime": n, "workloads": workloads}),
        hardware: None,
        seq: Some(n),
    }
}

/// Reads the feed from where the last read stopped.
struct Feed<'a> {
    store: &'a dyn Store,
    cursor: ChangeCursor,
}

impl<'a> Feed<'a> {
    fn new(store: &'a dyn Store) -> Self {
        let start = store.changes_since(None).unwrap();
        assert!(start.devices.is_empty() && start.objects.is_empty());
        Self {
            store,
            cursor: start.cursor,
        }
    }

    /// Changed devices and objects (by name), sorted.
    fn next(&mut self) -> (Vec<String>, Vec<String>) {
        let c = self.store.changes_since(Some(&self.cursor)).unwrap();
        self.cursor = c.cursor;
        let mut d: Vec<String> = c.devices.iter().map(ToString::to_string).collect();
        let mut o: Vec<String> = c
            .objects
            .iter()
            .map(|k| format!("{}/{}", k.kind, k.name))
            .collect();
        d.sort();
        o.sort();
        (d, o)
    }

    fn devices(&mut self) -> Vec<String> {
        self.next().0
    }
}

fn device_changes(backend: &dyn Backend) {
    let s = backend.open();
    let mut feed = Feed::new(&*s);
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, false, 1).unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
    assert!(feed.devices().is_empty(), "nothing twice");
    s.approve(&d).unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
    // First contact: unknown -> online.
    s.ingest_batch(&d, &[], Some(&beat(json!([]), 1)), Contact::at(10))
        .unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
    // Heartbeats that only move "last seen" (and what the status ignores).
    s.ingest_batch(&d, &[], Some(&beat(json!([]), 2)), Contact::at(20))
        .unwrap();
    s.update_status(&d, &beat(json!([]), 3), &[], 30).unwrap();
    assert!(
        feed.devices().is_empty(),
        "an online heartbeat is no change"
    );
    // A workload phase the EdgeDevice status copies.
    let running = json!([{"name": "w", "phase": "running"}]);
    s.ingest_batch(&d, &[], Some(&beat(running.clone(), 4)), Contact::at(40))
        .unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
    s.ingest_batch(&d, &[], Some(&beat(running, 5)), Contact::at(50))
        .unwrap();
    assert!(feed.devices().is_empty());
    // Labels and decommissioning.
    let labels = [("a".to_owned(), "b".to_owned())].into();
    s.set_labels(&d, &labels).unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
    s.set_labels(&d, &labels).unwrap();
    assert!(feed.devices().is_empty(), "the same labels again");
    let event = JsonEvent {
        at_ms: 60,
        index: 0,
        payload: vec![1],
    };
    s.decommission(&d, "op", false, &event, 60).unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
}

fn wake_on_contact(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    s.enrol(&d, &ns(), None, true, 1).unwrap();
    s.ingest_batch(&d, &[], None, Contact::at(10)).unwrap();
    let mut feed = Feed::new(&*s);
    s.ingest_batch(&d, &[], None, Contact::at(20)).unwrap();
    assert!(feed.devices().is_empty());
    // The controller judged it offline at "last seen" 20: the next contact
    // marks it, once.
    let judged = SeenAt {
        id: d.clone(),
        last_seen_ms: Some(20),
    };
    assert!(
        s.wake_on_contact(std::slice::from_ref(&judged))
            .unwrap()
            .is_empty()
    );
    assert!(feed.devices().is_empty(), "asking is no change");
    s.ingest_batch(&d, &[], None, Contact::at(30)).unwrap();
    assert_eq!(feed.devices(), ["dev-1"]);
    s.ingest_batch(&d, &[], None, Contact::at(40)).unwrap();
    assert!(feed.devices().is_empty(), "the flag was spent");
    // Judged from a "last seen" that moved since: not asked, returned.
    assert_eq!(s.wake_on_contact(&[judged]).unwrap(), [id("dev-1")]);
    s.ingest_batch(&d, &[], None, Contact::at(50)).unwrap();
    assert!(feed.devices().is_empty());
}

fn object_changes(backend: &dyn Backend) {
    let s = backend.open();
    let mut feed = Feed::new(&*s);
    let object = |spec: Value| StoredObject {
        kind: "EdgeWorkload".into(),
        namespace: "default".into(),
        name: "w".into(),
        body: json!({"metadata": {"name": "w"}, "spec": spec}),
    };
    s.put_object(&object(json!({"x": 1}))).unwrap();
    assert_eq!(feed.next().1, ["EdgeWorkload/w"]);
    let mut with_status = object(json!({"x": 1}));
    with_status.body["status"] = json!({"conditions": []});
    s.put_object(&with_status).unwrap();
    assert!(feed.next().1.is_empty(), "a status write is no change");
    s.put_object(&object(json!({"x": 2}))).unwrap();
    assert_eq!(feed.next().1, ["EdgeWorkload/w"]);
    assert!(s.delete_object("EdgeWorkload", "default", "w").unwrap());
    assert_eq!(feed.next().1, ["EdgeWorkload/w"]);
    assert_eq!(feed.next(), (vec![], vec![]));
}

fn another_handle(backend: &dyn Backend) {
    let leader = backend.open();
    let other = backend.open();
    let mut feed = Feed::new(&*leader);
    let d = id("dev-1");
    other.enrol(&d, &ns(), None, false, 1).unwrap();
    other.approve(&d).unwrap();
    other
        .put_object(&StoredObject {
            kind: "ConfigMap".into(),
            namespace: "default".into(),
            name: "c".into(),
            body: json!({"data": {}}),
        })
        .unwrap();
    assert_eq!(
        feed.next(),
        (vec!["dev-1".to_owned()], vec!["ConfigMap/c".to_owned()])
    );
    // Reopened (a restart): the feed goes on from the same cursor.
    let reopened = backend.open();
    other.ingest_batch(&d, &[], None, Contact::at(5)).unwrap();
    let c = reopened.changes_since(Some(&feed.cursor)).unwrap();
    assert_eq!(c.devices, [d]);
}

both_backends!(
    device_changes,
    wake_on_contact,
    object_changes,
    another_handle
);
