//! Object validation and apply tests over a real SQLite store.

use serde_json::json;

use super::*;
use crate::store::Store;

fn store() -> (tempfile::TempDir, crate::store::SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::store::SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
    (dir, s)
}

#[test]
fn bad_objects_are_refused_with_a_reason() {
    let ok = json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeDeviceSet",
                    "metadata": {"name": "cams"}, "spec": {}});
    let stored = validate(&ok, "default").unwrap();
    assert_eq!(stored.namespace, "default");
    assert_eq!(stored.body["metadata"]["namespace"], json!("default"));

    let cases = [
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "Pod", "metadata": {"name": "x"}}),
            "unknown kind",
        ),
        (
            json!({"apiVersion": "v1", "kind": "EdgeDeviceSet", "metadata": {"name": "x"}}),
            "apiVersion",
        ),
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeDeviceSet", "metadata": {}}),
            "metadata.name",
        ),
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeDeviceSet", "metadata": {"name": "Bad_Name"}}),
            "metadata.name",
        ),
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeDeviceSet", "metadata": {"name": "x"},
                "spec": {"heartbeat": {"periodSeconds": "often"}}}),
            "periodSeconds",
        ),
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeWorkload", "metadata": {"name": "x"},
                "spec": {"type": "pod", "pod": {"spec": {"containers": []}}}}),
            "deviceSelector",
        ),
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeWorkload", "metadata": {"name": "x"},
                "spec": {"type": "pod", "deviceSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["v"]}]},
                         "pod": {"spec": {"containers": []}}}}),
            "deviceSelector",
        ),
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeDeviceSignedRequest", "metadata": {"name": "x"},
                "spec": {}}),
            "targetNamespace",
        ),
    ];
    for (body, want) in cases {
        let err = validate(&body, "default").unwrap_err().to_string();
        assert!(err.contains(want), "{body}: {err}");
    }
}

#[test]
fn apply_creates_updates_and_keeps_server_owned_fields() {
    let (_d, s) = store();
    let mut set = json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeDeviceSet",
                         "metadata": {"name": "cams", "namespace": "ns1"},
                         "spec": {"heartbeat": {"periodSeconds": 15}}, "status": {}});
    let (o, outcome) = apply(&s, &set, "default", "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(outcome, ApplyOutcome::Created);
    let uid = o.body["metadata"]["uid"].clone();
    assert!(uid.is_string());
    assert_eq!(
        apply(&s, &set, "default", "later").unwrap().1,
        ApplyOutcome::Unchanged
    );
    set["spec"]["heartbeat"]["periodSeconds"] = json!(20);
    let (o, outcome) = apply(&s, &set, "default", "later").unwrap();
    assert_eq!(outcome, ApplyOutcome::Configured);
    assert_eq!(o.body["metadata"]["uid"], uid);
    assert_eq!(
        o.body["metadata"]["creationTimestamp"],
        json!("2026-01-01T00:00:00Z")
    );
    let stored = s
        .get_object("EdgeDeviceSet", "ns1", "cams")
        .unwrap()
        .unwrap();
    assert_eq!(stored.body["spec"]["heartbeat"]["periodSeconds"], json!(20));
}

#[test]
fn manifests_parse_as_documents_and_lists() {
    let docs =
        parse_manifests("---\na: 1\n---\n---\nkind: List\nitems: [{b: 2}, {c: 3}]\n").unwrap();
    assert_eq!(
        docs,
        vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})]
    );
    let err = parse_manifests("a: 1\n---\n- just\n- a list\n").unwrap_err();
    assert!(err.to_string().starts_with("document 2"), "{err}");
    assert!(parse_manifests("a: [unclosed").is_err());
}
