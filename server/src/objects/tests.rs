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

mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-zA-Z0-9./_-]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("spec".to_owned()),
                        Just("metadata".to_owned()),
                        Just("name".to_owned()),
                        Just("device".to_owned()),
                        Just("deviceSelector".to_owned()),
                        Just("heartbeat".to_owned()),
                        "[a-z]{1,8}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse_manifests(&text);
        }

        #[test]
        fn validation_of_arbitrary_objects_never_panics_and_valid_ones_are_stable(
            kind in prop_oneof![Just("EdgeDevice"), Just("EdgeDeviceSet"), Just("EdgeWorkload"), Just("EdgeDeviceSignedRequest"), Just("Pod")],
            spec in json_value(),
        ) {
            let body = json!({"apiVersion": flotta_crd::API_VERSION, "kind": kind,
                              "metadata": {"name": "x"}, "spec": spec});
            if let Ok(stored) = validate(&body, "default") {
                // What is stored validates again to itself, with no field
                // the schema does not know.
                let (again, unknown) = validate_noting_unknown(&stored.body, "default").unwrap();
                prop_assert_eq!(again.body, stored.body);
                prop_assert!(unknown.is_empty(), "{:?}", unknown);
            }
        }
    }
}

#[test]
fn errors_name_values_without_rust_debug_formatting() {
    let wrong = json!({"apiVersion": "v1", "kind": "EdgeDeviceSet", "metadata": {"name": "x"}});
    let err = validate(&wrong, "default").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "EdgeDeviceSet \"x\": apiVersion must be \"{}\", not \"v1\"",
            flotta_crd::API_VERSION
        )
    );
    let missing = json!({"kind": "EdgeDeviceSet", "metadata": {"name": "x"}});
    let err = validate(&missing, "default").unwrap_err().to_string();
    assert!(err.ends_with(", not missing"), "{err}");
    let unknown = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
    let err = validate(&unknown, "default").unwrap_err().to_string();
    assert!(err.starts_with("unknown kind \"Pod\""), "{err}");
}

#[test]
fn unknown_fields_of_the_crd_types_are_named_by_kube_path() {
    let body = json!({
        "apiVersion": flotta_crd::API_VERSION, "kind": "EdgeWorkload",
        "metadata": {"name": "web", "labels": {"any.key/x": "kept"}, "colour": "red",
                     "annotations": {"note": "kept"}},
        "spec": {"type": "pod", "device": "dev-1", "foo": 1,
                 "pod": {"spec": {"containers": [
                     {"name": "a", "image": "nginx"},
                     {"name": "b", "image": "nginx", "bar": {"x": 1},
                      "ports": [{"containerPort": 80, "baz": true}]}]}}},
        "status": {"anything": "ignored"},
    });
    let (stored, unknown) = validate_noting_unknown(&body, "default").unwrap();
    assert_eq!(
        unknown,
        [
            "metadata.colour",
            "spec.foo",
            "spec.pod.spec.containers[1].bar",
            "spec.pod.spec.containers[1].ports[0].baz",
        ]
    );
    // Dropped from what is stored; maps keep every key.
    assert!(stored.body["spec"].get("foo").is_none());
    assert_eq!(stored.body["metadata"]["labels"]["any.key/x"], "kept");
    assert_eq!(stored.body["metadata"]["annotations"]["note"], "kept");

    let strict = ObjectError::UnknownFields(vec![UnknownFields {
        kind: "EdgeWorkload".into(),
        name: "web".into(),
        paths: unknown,
    }]);
    assert_eq!(
        strict.to_string(),
        "EdgeWorkload \"web\": strict decoding error: unknown field \"metadata.colour\", \
         unknown field \"spec.foo\", unknown field \"spec.pod.spec.containers[1].bar\", \
         unknown field \"spec.pod.spec.containers[1].ports[0].baz\""
    );
}

#[test]
fn flotta_examples_have_no_unknown_fields() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crd/examples");
    for name in [
        "edgedevice.yaml",
        "edgedevice-status.yaml",
        "edgedeviceset.yaml",
        "edgedevicesignedrequest.yaml",
        "edgeworkload-device.yaml",
        "edgeworkload-selector.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for doc in parse_manifests(&text).unwrap() {
            let (_, unknown) = validate_noting_unknown(&doc, "default").unwrap();
            assert!(unknown.is_empty(), "{name}: {unknown:?}");
        }
    }
}

#[test]
fn configmaps_are_core_v1_objects_with_string_data() {
    let ok = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "greetings", "namespace": "plant"},
                    "data": {"greeting": "hello", "app.conf": "a=1\n"},
                    "immutable": true, "extra": 1});
    let (stored, unknown) = validate_noting_unknown(&ok, "default").unwrap();
    assert_eq!(
        (stored.kind.as_str(), stored.namespace.as_str()),
        ("ConfigMap", "plant")
    );
    assert_eq!(stored.body["data"]["greeting"], "hello");
    assert_eq!(unknown, ["extra"]);
    assert!(stored.body.get("extra").is_none());
    for (body, why) in [
        (
            json!({"apiVersion": flotta_crd::API_VERSION, "kind": "ConfigMap",
                "metadata": {"name": "x"}}),
            "apiVersion must be \"v1\"",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                "data": {"n": 1}}),
            "data.n must be a string",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                "data": ["a"]}),
            "data must be a map",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                "data": {"a b": "c"}}),
            "letters, digits",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                "binaryData": {"blob": "not base64!"}}),
            "binaryData.blob is not base64",
        ),
    ] {
        let e = validate(&body, "default").unwrap_err().to_string();
        assert!(e.contains(why), "{body}: {e}");
    }
}

#[test]
fn secrets_keep_base64_data_and_take_string_data_as_kubernetes_does() {
    let doc = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "plant"},
        "data": {"user": "YWRtaW4=", "password": "b2xk"},
        "stringData": {"password": "s3cr3t"}});
    let (stored, unknown) = validate_noting_unknown(&doc, "default").unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    assert_eq!(
        (stored.kind.as_str(), stored.namespace.as_str()),
        ("Secret", "plant")
    );
    assert_eq!(stored.body["type"], "Opaque", "the default type");
    // stringData wins over data and is not kept.
    assert_eq!(
        stored.body["data"],
        json!({"user": "YWRtaW4=", "password": "czNjcjN0"})
    );
    assert!(stored.body.get("stringData").is_none());
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        r#"{"auths": {"r.example": {"auth": "dTpw"}}}"#,
    );
    let pull = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull"},
        "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": auth}});
    validate(&pull, "default").unwrap();
    let big = "x".repeat((1 << 20) + 1);
    for (body, why) in [
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                "data": {"k": "%%%"}}),
            "data.k is not base64",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                "stringData": {"k": 5}}),
            "stringData.k must be a string",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                "type": 3}),
            "type must be a non-empty string",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                "stringData": {"k": big}}),
            "more than the 1048576 a Secret may",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{}"}}),
            "has no \"auths\" map",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                "type": "kubernetes.io/dockerconfigjson"}),
            "needs data..dockerconfigjson",
        ),
    ] {
        let e = validate(&body, "default").unwrap_err().to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}
