//! Every status field the server writes is declared in our EdgeDevice CRD
//! schema, so a real API server would not prune it: a device reports
//! everything it can, the controller writes the status, the live fields are
//! overlaid as `get` shows them, and the object is checked with the crate's
//! structural validator (shared with `server/crd`'s tests).
#![allow(clippy::unwrap_used)]

#[path = "../crd/tests/common/validate.rs"]
#[allow(dead_code, unreachable_pub)]
mod validate;

use flotta_server::controller::{self, Settings, status};
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::store::{SqliteStore, StatusUpdate, Store};
use serde_json::{Value, json};

const T0: u64 = 1_714_557_600_000;

#[test]
fn every_status_field_the_server_writes_is_in_our_crd_schema() {
    let store = SqliteStore::in_memory().unwrap();
    let id = DeviceId::parse("dev-1").unwrap();
    let hardware = json!({"hostname": "h1",
        "cpu": {"architecture": "aarch64", "model_name": "Cortex-A72", "flags": ["neon"]},
        "system_vendor": {"manufacturer": "Raspberry", "product_name": "Pi 4", "serial_number": "1"}});
    let ns = Namespace::parse("default").unwrap();
    store.enrol(&id, &ns, Some(&hardware), true, T0).unwrap();
    let heartbeat = json!({"status": "degraded", "version": "1", "hardware": hardware,
        "workloads": [{"name": "w", "status": "running", "last_data_upload": "2024-05-01T10:00:00Z"}]});
    let update = StatusUpdate {
        status: "degraded".into(),
        heartbeat,
        hardware: Some(hardware),
        seq: None,
    };
    store.update_status(&id, &update, &[], T0).unwrap();
    // A batch reporting the agent's upload interval (shown on reads).
    let contact = flotta_server::store::Contact::with_interval(T0, 3600);
    store.ingest_batch(&id, &[], None, contact).unwrap();
    controller::reconcile(&store, &store, Settings::default(), T0 + 1000).unwrap();

    let object = store
        .get_object("EdgeDevice", "default", "dev-1")
        .unwrap()
        .unwrap();
    let mut body = object.body;
    let device = store.device(&id).unwrap().unwrap();
    let presence =
        controller::device_presence(&store, Settings::default(), &device, T0 + 1000).unwrap();
    status::overlay_live(&mut body["status"], &device, presence);
    let link = flotta_server::store::FrameLinkStatus {
        last_link: Some("udp".into()),
        key_id: Some([1, 2, 3, 4]),
        epoch: Some(2),
        highest_uplink_counter: Some(40),
        downlink_counter: Some(48),
        frames_stored: 39,
        frames_duplicate: 2,
    };
    status::overlay_link(&mut body["status"], &link);
    let st = &body["status"];
    assert_eq!(st["link"]["frameKeyId"], "01020304");
    for field in [
        "phase",
        "presence",
        "lastSeenTime",
        "uploadIntervalSeconds",
        "hardware",
        "workloads",
        "link",
    ] {
        assert!(st.get(field).is_some(), "{field} not written: {st}");
    }
    assert!(st["workloads"][0]["lastDataUpload"].is_string(), "{st}");

    let crd = flotta_crd::all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "EdgeDevice")
        .unwrap();
    let crd: Value = serde_json::to_value(crd).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let problems = validate::validate(&body, schema);
    assert!(problems.is_empty(), "{problems:#?}\nin {body:#}");
}
