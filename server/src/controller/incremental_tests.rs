//! The incremental pass (`incremental.rs`): focused cases, and the property
//! that it leaves the store and the objects exactly as a full pass would.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::incremental::Tracker;
use super::*;
use crate::device_id::Namespace;
use crate::objects;
use crate::store::{Contact, SqliteStore, StatusUpdate, StoredObject};

const T0: u64 = 1_750_000_000_000;
const DAY: Duration = Duration::from_secs(86_400);

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrol(store: &dyn Store, name: &str, ns: &str, auto: bool) {
    let ns = Namespace::parse(ns).unwrap();
    store.enrol(&id(name), &ns, None, auto, T0).unwrap();
}

fn beat(store: &dyn Store, name: &str, workloads: Value, at: u64) {
    let update = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({"workloads": workloads}),
        hardware: None,
        seq: None,
    };
    store
        .ingest_batch(&id(name), &[], Some(&update), Contact::at(at))
        .unwrap();
}

fn workload(ns: &str, name: &str, selector: Value) -> Value {
    json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeWorkload",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "pod", "deviceSelector": {"matchLabels": selector},
            "pod": {"spec": {"containers": [{"name": "c", "image": format!("img/{name}")}]}}}})
}

fn apply(objects: &dyn objects::ObjectSource, v: &Value) {
    objects::apply(objects, v, "default", "2026-01-01T00:00:00Z").unwrap();
}

fn presence_of(store: &dyn Store, name: &str) -> Option<Value> {
    let ns = store.device(&id(name)).unwrap().unwrap().namespace;
    store
        .get_object("EdgeDevice", ns.as_str(), name)
        .unwrap()
        .and_then(|o| o.body.pointer("/status/presence").cloned())
}

fn tracker() -> Tracker {
    Tracker::new(DAY)
}

#[test]
fn a_heartbeat_of_an_online_device_makes_no_work() {
    let s = SqliteStore::in_memory().unwrap();
    enrol(&s, "dev-a", "default", true);
    enrol(&s, "dev-b", "default", true);
    beat(&s, "dev-a", json!([]), T0);
    let mut t = tracker();
    let first = t.pass(&s, &s, Settings::default(), T0).unwrap();
    assert!(first.full);
    assert_eq!(first.looked_at, 2);
    // The passes' own writes (labels, objects) are looked at once more.
    t.pass(&s, &s, Settings::default(), T0).unwrap();
    let idle = t.pass(&s, &s, Settings::default(), T0).unwrap();
    assert_eq!((idle.full, idle.looked_at, idle.skipped), (false, 0, 2));
    beat(&s, "dev-a", json!([]), T0 + 1000);
    let r = t.pass(&s, &s, Settings::default(), T0 + 1000).unwrap();
    assert_eq!((r.looked_at, r.skipped), (0, 2));
    assert_eq!(r.presence.get(&Presence::Online), Some(&1));
    // A workload phase is an input of the EdgeDevice status.
    beat(
        &s,
        "dev-a",
        json!([{"name": "w", "phase": "running"}]),
        T0 + 2000,
    );
    let r = t.pass(&s, &s, Settings::default(), T0 + 2000).unwrap();
    assert_eq!(r.looked_at, 1);
}

#[test]
fn offline_then_online_again_in_the_next_pass() {
    let s = SqliteStore::in_memory().unwrap();
    enrol(&s, "dev-a", "default", true);
    beat(&s, "dev-a", json!([]), T0);
    let settings = Settings::default(); // 60 s × 3
    let mut t = tracker();
    t.pass(&s, &s, settings, T0).unwrap();
    t.pass(&s, &s, settings, T0).unwrap();
    assert_eq!(presence_of(&s, "dev-a"), Some(json!("online")));
    let quiet = t.pass(&s, &s, settings, T0 + 180_000).unwrap();
    assert_eq!(quiet.looked_at, 0, "not offline yet");
    let r = t.pass(&s, &s, settings, T0 + 180_001).unwrap();
    assert_eq!(r.looked_at, 1, "its deadline passed");
    assert_eq!(presence_of(&s, "dev-a"), Some(json!("offline")));
    assert_eq!(t.pass(&s, &s, settings, T0 + 200_000).unwrap().looked_at, 0);
    beat(&s, "dev-a", json!([]), T0 + 210_000);
    let r = t.pass(&s, &s, settings, T0 + 210_000).unwrap();
    assert_eq!(r.looked_at, 1, "its first heartbeat after going offline");
    assert_eq!(presence_of(&s, "dev-a"), Some(json!("online")));
    assert_eq!(r.presence.get(&Presence::Online), Some(&1));
}

#[test]
fn a_heard_from_device_gets_a_later_deadline_without_a_pass() {
    let s = SqliteStore::in_memory().unwrap();
    enrol(&s, "dev-a", "default", true);
    beat(&s, "dev-a", json!([]), T0);
    let settings = Settings::default();
    let mut t = tracker();
    t.pass(&s, &s, settings, T0).unwrap();
    t.pass(&s, &s, settings, T0).unwrap();
    beat(&s, "dev-a", json!([]), T0 + 100_000);
    let r = t.pass(&s, &s, settings, T0 + 190_000).unwrap();
    assert_eq!(r.looked_at, 0);
    assert_eq!(presence_of(&s, "dev-a"), Some(json!("online")));
    let r = t.pass(&s, &s, settings, T0 + 280_001).unwrap();
    assert_eq!(r.looked_at, 1);
    assert_eq!(presence_of(&s, "dev-a"), Some(json!("offline")));
}

#[test]
fn a_workload_edit_looks_at_its_namespace_only() {
    let s = SqliteStore::in_memory().unwrap();
    for (name, ns) in [("a-1", "ns-a"), ("a-2", "ns-a"), ("b-1", "ns-b")] {
        enrol(&s, name, ns, true);
    }
    let mut t = tracker();
    t.pass(&s, &s, Settings::default(), T0).unwrap();
    t.pass(&s, &s, Settings::default(), T0).unwrap();
    apply(&s, &workload("ns-a", "w", json!({})));
    let r = t.pass(&s, &s, Settings::default(), T0).unwrap();
    assert_eq!((r.looked_at, r.configs_changed, r.skipped), (2, 2, 1));
    let spec = s.configuration(&id("a-2")).unwrap().unwrap().spec;
    assert_eq!(spec["workloads"][0]["name"], json!("w"));
}

#[test]
fn a_change_through_another_handle_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let leader = SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
    let other = SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
    enrol(&leader, "dev-a", "default", false);
    let mut t = tracker();
    t.pass(&leader, &leader, Settings::default(), T0).unwrap();
    t.pass(&leader, &leader, Settings::default(), T0).unwrap();
    other.approve(&id("dev-a")).unwrap();
    let r = t.pass(&leader, &leader, Settings::default(), T0).unwrap();
    assert_eq!(r.looked_at, 1);
    assert!(
        leader
            .get_object("EdgeDevice", "default", "dev-a")
            .unwrap()
            .is_some()
    );
}

/// Leadership whose term the test sets.
#[derive(Debug, Default)]
struct Terms(std::sync::atomic::AtomicU64);

impl crate::leader::Leadership for Terms {
    fn is_leader(&self) -> bool {
        true
    }
    fn term(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_new_leadership_term_starts_with_a_full_pass() {
    let s: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    enrol(&*s, "dev-a", "default", true);
    let terms = Arc::new(Terms::default());
    let clock = Arc::new(crate::clock::ManualClock::new(crate::clock::from_unix_ms(
        T0,
    )));
    let runner = runner::Runner::new(
        s.clone(),
        Arc::new(objects::StoreObjects(s.clone())),
        clock,
        Settings::default(),
        Arc::new(crate::metrics::Metrics::new()),
    )
    .resync_every(DAY)
    .led_by(terms.clone());
    assert!(runner.run_now().await.unwrap().full);
    runner.run_now().await.unwrap();
    assert!(!runner.run_now().await.unwrap().full);
    terms.0.store(1, std::sync::atomic::Ordering::SeqCst);
    let r = runner.run_now().await.unwrap();
    assert!(r.full);
    assert_eq!(r.looked_at, 1);
    assert!(!runner.run_now().await.unwrap().full);
}

#[test]
fn a_full_pass_comes_again_after_the_resync_interval() {
    let s = SqliteStore::in_memory().unwrap();
    enrol(&s, "dev-a", "default", true);
    let mut t = Tracker::new(Duration::from_secs(60));
    assert!(t.pass(&s, &s, Settings::default(), T0).unwrap().full);
    assert!(
        !t.pass(&s, &s, Settings::default(), T0 + 59_999)
            .unwrap()
            .full
    );
    assert!(
        t.pass(&s, &s, Settings::default(), T0 + 60_000)
            .unwrap()
            .full
    );
}

/// One change, applied the same way to both stores.
#[derive(Debug, Clone)]
enum Op {
    Enrol(usize, bool),
    Approve(usize),
    /// A batch with a heartbeat, and the upload interval it reports.
    Beat(usize, usize, Option<u32>),
    /// A batch without one.
    Seen(usize, Option<u32>),
    Label(usize, usize),
    Period(usize, u64),
    Workload(usize, usize),
    DeleteWorkload(usize),
    ConfigMap(usize),
    Set(u64),
    Decommission(usize),
    Advance(u64),
}

const DEVICES: [&str; 4] = ["d-0", "d-1", "d-2", "d-3"];
const ZONES: [&str; 3] = ["north", "south", "set"];

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DEVICES.len();
    // Upload intervals shorter and longer than the heartbeat periods (10,
    // 20, 60 s), and batches that say none.
    let interval = || {
        prop_oneof![
            Just(None),
            Just(Some(5u32)),
            Just(Some(45)),
            Just(Some(120))
        ]
    };
    prop_oneof![
        1 => (d.clone(), any::<bool>()).prop_map(|(d, a)| Op::Enrol(d, a)),
        1 => d.clone().prop_map(Op::Approve),
        3 => (d.clone(), 0..3usize, interval()).prop_map(|(d, w, i)| Op::Beat(d, w, i)),
        3 => (d.clone(), interval()).prop_map(|(d, i)| Op::Seen(d, i)),
        1 => (d.clone(), 0..ZONES.len()).prop_map(|(d, z)| Op::Label(d, z)),
        1 => (d.clone(), prop_oneof![Just(10u64), Just(60)]).prop_map(|(d, p)| Op::Period(d, p)),
        1 => (0..2usize, 0..ZONES.len()).prop_map(|(w, z)| Op::Workload(w, z)),
        1 => (0..2usize).prop_map(Op::DeleteWorkload),
        1 => (0..3usize).prop_map(Op::ConfigMap),
        1 => prop_oneof![Just(5u64), Just(20)].prop_map(Op::Set),
        1 => d.prop_map(Op::Decommission),
        4 => (0..150_000u64).prop_map(Op::Advance),
    ]
}

fn edit_device<S: Store>(s: &S, d: usize, f: impl FnOnce(&mut Value)) {
    if let Some(mut o) = s.get_object("EdgeDevice", "default", DEVICES[d]).unwrap() {
        f(&mut o.body);
        objects::ObjectSource::put(s, &o).unwrap();
    }
}

fn run<S: Store>(s: &S, op: &Op, now: u64) {
    let ns = Namespace::parse("default").unwrap();
    match *op {
        Op::Enrol(d, auto) => {
            let _ = s.enrol(&id(DEVICES[d]), &ns, None, auto, now);
        }
        Op::Approve(d) => {
            let _ = s.approve(&id(DEVICES[d]));
        }
        Op::Beat(d, w, interval) => {
            let phases = [
                json!([]),
                json!([{"name": "w-0", "phase": "running"}]),
                json!([{"name": "w-0", "phase": "crashed"}]),
            ];
            let update = StatusUpdate {
                status: if w == 2 { "degraded" } else { "up" }.into(),
                heartbeat: json!({"workloads": phases[w].clone(), "uptime": now}),
                hardware: None,
                seq: None,
            };
            let contact = Contact {
                at_ms: now,
                upload_interval_seconds: interval,
                usage: Default::default(),
            };
            let _ = s.ingest_batch(&id(DEVICES[d]), &[], Some(&update), contact);
        }
        Op::Seen(d, interval) => {
            let contact = Contact {
                at_ms: now,
                upload_interval_seconds: interval,
                usage: Default::default(),
            };
            let _ = s.ingest_batch(&id(DEVICES[d]), &[], None, contact);
        }
        Op::Label(d, z) => edit_device(s, d, |b| {
            if ZONES[z] == "set" {
                b["metadata"]["labels"][flotta_crd::labels::MEMBER_OF] = json!("fleet");
            } else {
                b["metadata"]["labels"]["zone"] = json!(ZONES[z]);
            }
        }),
        Op::Period(d, p) => edit_device(s, d, |b| {
            b["spec"]["heartbeat"] = json!({"periodSeconds": p});
        }),
        Op::Workload(w, z) => apply(
            s,
            &workload("default", &format!("w-{w}"), json!({"zone": ZONES[z]})),
        ),
        Op::DeleteWorkload(w) => {
            s.delete_object("EdgeWorkload", "default", &format!("w-{w}"))
                .unwrap();
        }
        Op::ConfigMap(v) => apply(
            s,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default"}, "data": {"v": v.to_string()}}),
        ),
        Op::Set(p) => apply(
            s,
            &json!({"apiVersion": flotta_crd::API_VERSION,
            "kind": "EdgeDeviceSet", "metadata": {"name": "fleet", "namespace": "default"},
            "spec": {"heartbeat": {"periodSeconds": p}}}),
        ),
        Op::Decommission(d) => {
            let event = crate::store::JsonEvent {
                at_ms: now,
                index: 0,
                payload: vec![1],
            };
            let _ = s.decommission(&id(DEVICES[d]), "op", false, &event, now);
        }
        Op::Advance(_) => {}
    }
}

/// Everything a pass writes: devices, configurations, objects.
type Snapshot = (
    Vec<crate::store::Device>,
    Vec<Option<(String, Value)>>,
    Vec<StoredObject>,
);

/// Everything a pass writes, without what differs by construction (uids).
fn snapshot(s: &dyn Store) -> Snapshot {
    let devices = s.devices().unwrap();
    let configs = devices
        .iter()
        .map(|d| s.configuration(&d.id).unwrap().map(|c| (c.version, c.spec)))
        .collect();
    let mut objects = Vec::new();
    for kind in Kind::ALL {
        for mut o in s.list_objects(kind.as_str(), None).unwrap() {
            if let Some(m) = o.body.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("uid");
            }
            objects.push(o);
        }
    }
    (devices, configs, objects)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// After every change, the incremental pass leaves the store and the
    /// objects exactly as a full pass over a twin store does.
    #[test]
    fn incremental_passes_equal_full_passes(ops in proptest::collection::vec(op(), 1..50)) {
        let settings = Settings { offline_after_missed_heartbeats: 2, ..Settings::default() };
        let (a, b) = (SqliteStore::in_memory().unwrap(), SqliteStore::in_memory().unwrap());
        let mut t = tracker();
        let mut now = T0;
        // Most devices enrolled (one waiting for approval) before the rest.
        let start = [Op::Enrol(0, true), Op::Enrol(1, true), Op::Enrol(2, false)];
        for op in start.iter().chain(&ops) {
            if let Op::Advance(ms) = op {
                now += ms;
            }
            run(&a, op, now);
            run(&b, op, now);
            let inc = t.pass(&a, &a, settings, now).unwrap();
            let full = reconcile(&b, &b, settings, now).unwrap();
            prop_assert_eq!(snapshot(&a), snapshot(&b), "after {:?}", op);
            prop_assert_eq!(&inc.presence, &full.presence);
            prop_assert_eq!(inc.devices, full.devices);
        }
    }
}

/// Objects as in the store, each `get` taking 20 ms: a pass over many
/// devices takes long, as the first pass after a bulk enrolment does.
#[derive(Debug)]
struct SlowObjects {
    inner: objects::StoreObjects,
    gets: std::sync::atomic::AtomicUsize,
}

impl objects::ObjectSource for SlowObjects {
    fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, crate::store::StoreError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        self.inner.get(kind, namespace, name)
    }
    fn list(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<StoredObject>, crate::store::StoreError> {
        self.inner.list(kind, namespace)
    }
    fn put(&self, object: &StoredObject) -> Result<(), crate::store::StoreError> {
        self.inner.put(object)
    }
    fn put_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<(), crate::store::StoreError> {
        self.inner.put_status(kind, namespace, name, status)
    }
    fn delete(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, crate::store::StoreError> {
        self.inner.delete(kind, namespace, name)
    }
    fn object_changes(&self, cursor: Option<u64>) -> objects::ObjectChanges {
        self.inner.object_changes(cursor)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_a_long_pass_between_two_devices() {
    let s: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    for i in 0..200 {
        enrol(&*s, &format!("dev-{i:03}"), "default", true);
    }
    let slow = Arc::new(SlowObjects {
        inner: objects::StoreObjects(s.clone()),
        gets: Default::default(),
    });
    let runner = runner::Runner::new(
        s.clone(),
        slow.clone(),
        Arc::new(crate::clock::ManualClock::new(crate::clock::from_unix_ms(
            T0,
        ))),
        Settings::default(),
        Arc::new(crate::metrics::Metrics::new()),
    );
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let looping = tokio::spawn(runner.clone().run_loop(Duration::from_secs(3600), rx));
    // The first pass (full: several gets per device, ≥ 8 s) is under way.
    while slow.gets.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = std::time::Instant::now();
    shutdown.send(true).unwrap();
    looping.await.unwrap();
    // The pass in the blocking pool ends at its next device, not after 200.
    let mut last = slow.gets.load(std::sync::atomic::Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = slow.gets.load(std::sync::atomic::Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "the pass went on for {:?} after the shutdown",
        asked.elapsed()
    );
    assert!(last < 100, "{last} gets: the pass did not stop early");
    // And a pass asked for after the shutdown does not start.
    assert!(matches!(
        runner.run_now().await,
        Err(ControllerError::Interrupted)
    ));
}
