//! Controller tests over a real SQLite store in a temporary directory.

use serde_json::{Value, json};

use super::*;
use crate::device_id::Namespace;
use crate::objects;

const T0: u64 = 1_750_000_000_000;

fn store() -> (tempfile::TempDir, crate::store::SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::store::SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
    (dir, s)
}

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrol(store: &dyn Store, name: &str, arch: &str, auto: bool) {
    let hw = json!({"hostname": format!("Host-{name}"), "cpu": {"architecture": arch, "model_name": "Cortex-A72"}});
    store
        .enrol(
            &id(name),
            &Namespace::parse("default").unwrap(),
            Some(&hw),
            auto,
            T0,
        )
        .unwrap();
}

fn apply(store: &dyn objects::ObjectSource, v: Value) {
    objects::apply(store, &v, "default", "2026-01-01T00:00:00Z").unwrap();
}

fn meta(kind: &str, name: &str) -> Value {
    json!({"apiVersion": flotta_crd::API_VERSION, "kind": kind,
           "metadata": {"name": name, "namespace": "default"}})
}

fn workload(name: &str, spec: Value) -> Value {
    let mut w = meta("EdgeWorkload", name);
    let mut spec = spec;
    spec["type"] = json!("pod");
    spec["pod"] = json!({"spec": {"containers": [{"name": "c", "image": format!("img/{name}")}]}});
    w["spec"] = spec;
    w
}

fn config(store: &dyn Store, name: &str) -> (String, Value) {
    let c = store.configuration(&id(name)).unwrap().expect("configured");
    (c.version, c.spec)
}

fn workload_names(spec: &Value) -> Vec<String> {
    spec["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect()
}

fn object(store: &dyn Store, kind: Kind, name: &str) -> Option<Value> {
    store
        .get_object(kind.as_str(), "default", name)
        .unwrap()
        .map(|o| o.body)
}

#[test]
fn auto_approval_creates_request_and_device_with_hardware_labels() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let req = object(&s, Kind::EdgeDeviceSignedRequest, "dev-a").expect("request");
    assert_eq!(req["spec"]["approved"], json!(true));
    assert_eq!(req["spec"]["targetNamespace"], json!("default"));
    assert_eq!(
        req["spec"]["features"]["hardware"]["hostname"],
        json!("Host-dev-a")
    );
    let dev = object(&s, Kind::EdgeDevice, "dev-a").expect("device");
    let labels = &dev["metadata"]["labels"];
    assert_eq!(labels["device.cpu-architecture"], json!("aarch64"));
    assert_eq!(labels["device.hostname"], json!("host-dev-a"));
    assert_eq!(labels["device.cpu-model"], json!("cortex-a72"));
    assert_eq!(labels["edgedeviceSignedRequest"], json!("true"));
    // The store's labels follow the object's.
    let stored = s.device(&id("dev-a")).unwrap().unwrap();
    assert_eq!(stored.labels["device.cpu-architecture"], "aarch64");
}

#[test]
fn manual_approval_through_the_request_or_the_store() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "x86_64", false);
    enrol(&s, "dev-b", "x86_64", false);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let req = object(&s, Kind::EdgeDeviceSignedRequest, "dev-a").unwrap();
    assert_eq!(req["spec"]["approved"], json!(false));
    assert_eq!(req["status"]["conditions"][0]["type"], json!("pending"));
    assert!(object(&s, Kind::EdgeDevice, "dev-a").is_none());
    assert!(s.configuration(&id("dev-a")).unwrap().is_none());

    // An operator applies the request with approved: true.
    let mut approved = req.clone();
    approved["spec"]["approved"] = json!(true);
    apply(&s, approved);
    // `approve` on the store for the other one.
    s.approve(&id("dev-b")).unwrap();
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    for name in ["dev-a", "dev-b"] {
        let d = s.device(&id(name)).unwrap().unwrap();
        assert_eq!(d.approval, Approval::Approved, "{name}");
        let req = object(&s, Kind::EdgeDeviceSignedRequest, name).unwrap();
        assert_eq!(req["spec"]["approved"], json!(true), "{name}");
        assert_eq!(
            req["status"]["conditions"][0]["type"],
            json!("approved"),
            "{name}"
        );
        assert!(object(&s, Kind::EdgeDevice, name).is_some(), "{name}");
        assert_eq!(config(&s, name).0, "1");
    }
}

#[test]
fn placement_by_device_name_and_by_selector() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    enrol(&s, "dev-b", "x86_64", true);
    enrol(&s, "dev-c", "aarch64", true);
    apply(&s, workload("by-name", json!({"device": "dev-b"})));
    apply(
        &s,
        workload(
            "by-arch",
            json!({"deviceSelector": {"matchLabels": {"device.cpu-architecture": "aarch64"}}}),
        ),
    );
    apply(
        &s,
        workload(
            "not-c",
            json!({"deviceSelector": {"matchExpressions": [
                {"key": "device.hostname", "operator": "NotIn", "values": ["host-dev-c"]}]}}),
        ),
    );
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    assert_eq!(workload_names(&config(&s, "dev-a").1), ["by-arch", "not-c"]);
    assert_eq!(workload_names(&config(&s, "dev-b").1), ["by-name", "not-c"]);
    assert_eq!(workload_names(&config(&s, "dev-c").1), ["by-arch"]);
    let w = &config(&s, "dev-b").1["workloads"][0];
    assert_eq!(w["namespace"], json!("default"));
    let pod: Value = serde_norway::from_str(w["specification"].as_str().unwrap()).unwrap();
    assert_eq!(pod["containers"][0]["image"], json!("img/by-name"));
}

#[test]
fn device_set_sections_take_precedence_one_by_one() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let mut dev = object(&s, Kind::EdgeDevice, "dev-a").unwrap();
    dev["metadata"]["labels"]["flotta/member-of"] = json!("cams");
    dev["spec"]["heartbeat"] = json!({"periodSeconds": 30});
    dev["spec"]["metrics"] = json!({"system": {"interval": 120}});
    dev["spec"]["osInformation"] = json!({"commitID": "device-commit"});
    apply(&s, dev);
    let mut set = meta("EdgeDeviceSet", "cams");
    set["spec"] = json!({"heartbeat": {"periodSeconds": 15}, "osInformation": {"commitID": "set-commit"},
                         "mounts": [{"device": "/dev/sda1", "folder": "/mnt", "type": "xfs"}]});
    apply(&s, set);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let c = &config(&s, "dev-a").1["configuration"];
    assert_eq!(c["heartbeat"]["period_seconds"], json!(15), "set wins");
    assert_eq!(c["os"]["commit_id"], json!("set-commit"), "set wins");
    assert_eq!(
        c["metrics"]["system"]["interval"],
        json!(120),
        "only the device has it"
    );
    assert_eq!(
        c["mounts"][0]["directory"],
        json!("/mnt"),
        "only the set has it"
    );

    // Without the membership label the device's own sections apply.
    let mut dev = object(&s, Kind::EdgeDevice, "dev-a").unwrap();
    dev["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("flotta/member-of");
    apply(&s, dev);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let c = &config(&s, "dev-a").1["configuration"];
    assert_eq!(c["heartbeat"]["period_seconds"], json!(30));
    assert_eq!(c["os"]["commit_id"], json!("device-commit"));
    assert!(c.get("mounts").is_none());
}

#[test]
fn versions_bump_only_when_the_message_changes() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    let first = reconcile(&s, &s, Settings::default(), T0).unwrap();
    assert_eq!(first.configs_changed, 1);
    let v1 = config(&s, "dev-a").0;
    let again = reconcile(&s, &s, Settings::default(), T0 + 1000).unwrap();
    assert_eq!(again.configs_changed, 0);
    assert_eq!(config(&s, "dev-a").0, v1);

    apply(&s, workload("w", json!({"device": "dev-a"})));
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let v2 = config(&s, "dev-a").0;
    assert_ne!(v2, v1);
    // Re-applying the same manifest changes nothing.
    apply(&s, workload("w", json!({"device": "dev-a"})));
    assert_eq!(
        reconcile(&s, &s, Settings::default(), T0)
            .unwrap()
            .configs_changed,
        0
    );
    assert_eq!(config(&s, "dev-a").0, v2);
    // A workload on another device leaves this one alone.
    apply(&s, workload("other", json!({"device": "dev-z"})));
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    assert_eq!(config(&s, "dev-a").0, v2);
}

#[test]
fn presence_follows_heartbeats_and_the_injected_clock() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    let settings = Settings {
        offline_after_missed_heartbeats: 2,
        ..Settings::default()
    };
    let r = reconcile(&s, &s, settings, T0).unwrap();
    assert_eq!(r.presence.get(&Presence::Unknown), Some(&1));
    let hb = json!({"status": "up", "workloads": [{"name": "w", "status": "running"}]});
    let update = crate::store::StatusUpdate {
        status: "up".into(),
        heartbeat: hb,
        hardware: None,
        seq: None,
    };
    s.update_status(&id("dev-a"), &update, &[], T0).unwrap();
    let status = |s: &dyn Store| object(s, Kind::EdgeDevice, "dev-a").unwrap()["status"].clone();

    reconcile(&s, &s, settings, T0 + 120_000).unwrap();
    let st = status(&s);
    assert_eq!(st["presence"], json!("online"));
    assert_eq!(st["phase"], json!("up"));
    assert_eq!(st["workloads"][0], json!({"name": "w", "phase": "running"}));

    let r = reconcile(&s, &s, settings, T0 + 120_001).unwrap();
    assert_eq!(r.presence.get(&Presence::Offline), Some(&1));
    assert_eq!(status(&s)["presence"], json!("offline"));

    s.update_status(&id("dev-a"), &update, &[], T0 + 200_000)
        .unwrap();
    reconcile(&s, &s, settings, T0 + 200_500).unwrap();
    assert_eq!(status(&s)["presence"], json!("online"));
    let device = s.device(&id("dev-a")).unwrap().unwrap();
    assert_eq!(
        device_presence(&s, settings, &device, T0 + 400_001).unwrap(),
        Presence::Offline
    );
}

#[test]
fn enrolment_into_a_target_set_labels_the_new_device() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", false);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let mut req = object(&s, Kind::EdgeDeviceSignedRequest, "dev-a").unwrap();
    req["spec"]["approved"] = json!(true);
    req["spec"]["targetSet"] = json!("cams");
    apply(&s, req);
    assert!(reconcile_device(&s, &s, Settings::default(), &id("dev-a"), T0).unwrap());
    let dev = object(&s, Kind::EdgeDevice, "dev-a").unwrap();
    assert_eq!(dev["metadata"]["labels"]["flotta/member-of"], json!("cams"));
}

fn heartbeat(s: &dyn Store, name: &str, hb: Value, at: u64) {
    let update = crate::store::StatusUpdate {
        status: "up".into(),
        heartbeat: hb,
        hardware: None,
        seq: None,
    };
    s.update_status(&id(name), &update, &[], at).unwrap();
}

#[test]
fn null_workloads_clear_the_list_and_last_data_upload_is_kept() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    let workloads = |s: &dyn Store| {
        object(s, Kind::EdgeDevice, "dev-a").unwrap()["status"]["workloads"].clone()
    };
    let hb = json!({"status": "up", "workloads": [
        {"name": "w", "status": "running", "last_data_upload": "2024-05-01T10:00:00.250+02:00"}]});
    heartbeat(&s, "dev-a", hb, T0);
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    assert_eq!(
        workloads(&s),
        json!([{"name": "w", "phase": "running", "lastDataUpload": "2024-05-01T08:00:00Z"}])
    );

    // What Flotta's device worker sends when it runs no workload.
    heartbeat(
        &s,
        "dev-a",
        json!({"status": "up", "workloads": null}),
        T0 + 1,
    );
    reconcile(&s, &s, Settings::default(), T0 + 1).unwrap();
    assert_eq!(workloads(&s), json!([]));

    heartbeat(
        &s,
        "dev-a",
        json!({"status": "up", "workloads": [{"name": "w"}]}),
        T0 + 2,
    );
    reconcile(&s, &s, Settings::default(), T0 + 2).unwrap();
    heartbeat(
        &s,
        "dev-a",
        json!({"status": "up", "workloads": []}),
        T0 + 3,
    );
    reconcile(&s, &s, Settings::default(), T0 + 3).unwrap();
    assert_eq!(workloads(&s), json!([]));
}

#[test]
fn referenced_secrets_go_once_in_the_configuration_and_change_its_version() {
    let (_d, s) = store();
    enrol(&s, "dev-a", "aarch64", true);
    enrol(&s, "dev-b", "aarch64", true);
    let env =
        json!([{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]);
    for name in ["one", "two"] {
        let mut w = workload(name, json!({"device": "dev-a"}));
        w["spec"]["pod"]["spec"]["containers"][0]["env"] = env.clone();
        apply(&s, w);
    }
    apply(&s, workload("plain", json!({"device": "dev-b"})));
    let secret = |password: &str| {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "default"},
            "stringData": {"password": password}})
    };
    apply(&s, secret("s3cr3t"));
    reconcile(&s, &s, Settings::default(), T0).unwrap();
    let (v1, spec) = config(&s, "dev-a");
    assert_eq!(
        spec["secrets"],
        json!([{"name": "db", "data": r#"{"password":"czNjcjN0"}"#}]),
        "once, for both workloads"
    );
    assert!(
        config(&s, "dev-b").1.get("secrets").is_none(),
        "a device whose workloads reference no Secret gets none"
    );
    apply(&s, secret("n3w"));
    reconcile(&s, &s, Settings::default(), T0 + 1).unwrap();
    let (v2, spec) = config(&s, "dev-a");
    assert_ne!(v1, v2, "a changed Secret is a new configuration");
    assert_eq!(spec["secrets"][0]["data"], r#"{"password":"bjN3"}"#);
}
