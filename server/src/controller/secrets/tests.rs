use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::*;

fn secret(name: &str, kind: &str, data: Value) -> StoredObject {
    StoredObject {
        kind: "Secret".into(),
        namespace: "default".into(),
        name: name.into(),
        body: json!({"apiVersion": "v1", "kind": "Secret", "type": kind,
            "metadata": {"name": name, "namespace": "default"}, "data": data}),
    }
}

#[test]
fn every_kind_of_reference_is_found() {
    let spec = json!({
        "initContainers": [{"envFrom": [{"secretRef": {"name": "init-env"}}]}],
        "containers": [
            {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                     {"name": "B", "value": "plain"},
                     {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "not-a-secret", "key": "k"}}}]},
            {"envFrom": [{"secretRef": {"name": "app-env"}}, {"configMapRef": {"name": "cm"}}]}
        ],
        "volumes": [{"name": "v", "secret": {"secretName": "files"}},
                    {"name": "c", "configMap": {"name": "cm"}},
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "projected"}}]}}]
    });
    let names: Vec<String> = referenced(&spec).into_iter().collect();
    assert_eq!(names, ["app-env", "db", "files", "init-env", "projected"]);
    assert!(referenced(&json!({"containers": [{"env": "x"}]})).is_empty());
}

#[test]
fn referenced_secrets_and_the_registry_auth_file_are_attached() {
    let auth = r#"{"auths": {"registry.example:5000": {"auth": "dXNlcjpwYXNz"}}}"#;
    let secrets = [
        secret(
            "db",
            "Opaque",
            json!({"password": STANDARD.encode("s3cr3t")}),
        ),
        secret("unused", "Opaque", json!({"k": "dg=="})),
        secret(
            "pull",
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": STANDARD.encode(auth)}),
        ),
    ];
    let workload = json!({"spec": {"imageRegistries": {"secretRef": {"name": "pull"}},
        "pod": {"spec": {"containers": [{"env": [
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "Q", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]}]}}}});
    let mut wire_workload = json!({"name": "web"});
    let entries = attach(&mut wire_workload, &workload, &secrets);
    assert_eq!(wire_workload["imageRegistries"]["authFile"], auth);
    // Flotta's shape: the data map (base64 values) as a JSON string.
    assert_eq!(entries.len(), 1, "the missing one is left out: {entries:?}");
    assert_eq!(entries[0]["name"], "db");
    let data: Value = serde_json::from_str(entries[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"password": "czNjcjN0"}));
    assert_eq!(problems(&workload, &secrets), ["Secret gone not found"]);
}

#[test]
fn a_registry_secret_of_another_type_is_a_problem_and_sends_no_auth_file() {
    let secrets = [secret("pull", "Opaque", json!({"x": "eA=="}))];
    let workload = json!({"spec": {"imageRegistries": {"secretRef": {"name": "pull"}},
        "pod": {"spec": {"containers": [{}]}}}});
    let mut wire_workload = json!({"name": "web"});
    assert!(attach(&mut wire_workload, &workload, &secrets).is_empty());
    assert!(wire_workload.get("imageRegistries").is_none());
    assert_eq!(
        problems(&workload, &secrets),
        ["Secret pull is of type Opaque, not kubernetes.io/dockerconfigjson"]
    );
    assert_eq!(
        problems(&workload, &[]),
        ["Secret pull not found"],
        "a missing registry Secret"
    );
}
