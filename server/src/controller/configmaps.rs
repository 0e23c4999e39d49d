//! The ConfigMaps a workload references, sent with it as Flotta does: the
//! workload's `configmaps` list holds each referenced ConfigMap of its
//! namespace as a YAML document, which the agent appends to the pod for
//! `podman kube play`. References are read from the pod spec: env
//! `valueFrom.configMapKeyRef`, `envFrom[].configMapRef` (containers and
//! init containers), `volumes[].configMap` and projected volumes'
//! `sources[].configMap`. A referenced ConfigMap that does not exist is
//! left out, and said: the workload's `status.conditions` gets a
//! `ReferencesResolved` condition with status `False`, reason
//! `MissingConfigMap` and the names in its message (shown by `describe
//! ew`) — `references.rs`, each controller pass; the device's `kube
//! play` then fails with podman's own message, as a `Failed` event.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::store::StoredObject;

/// Names of the ConfigMaps `pod_spec` references.
pub fn referenced(pod_spec: &Value) -> BTreeSet<String> {
    super::pod_refs::references(pod_spec).configmaps
}

/// `configmap` as the document a device gets: its name, data, binary
/// data and immutability (no namespace, labels or server fields).
fn document(configmap: &StoredObject) -> String {
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), "v1".into());
    doc.insert("kind".into(), "ConfigMap".into());
    doc.insert(
        "metadata".into(),
        serde_json::json!({ "name": configmap.name }),
    );
    for key in ["data", "binaryData", "immutable"] {
        if let Some(v) = configmap.body.get(key) {
            doc.insert(key.into(), v.clone());
        }
    }
    serde_norway::to_string(&Value::Object(doc)).unwrap_or_default()
}

/// The ConfigMaps `workload` references that are not among `configmaps`.
pub fn missing(workload: &Value, configmaps: &[StoredObject]) -> Vec<String> {
    let Some(spec) = workload.pointer("/spec/pod/spec") else {
        return Vec::new();
    };
    referenced(spec)
        .into_iter()
        .filter(|n| !configmaps.iter().any(|c| &c.name == n))
        .collect()
}

/// Add to `wire` (a Flotta `workload`) the ConfigMaps among `configmaps`
/// (those of its namespace) that `workload` (the EdgeWorkload object)
/// references, in name order; nothing when it references none.
pub fn attach(wire: &mut Value, workload: &Value, configmaps: &[StoredObject]) {
    let Some(spec) = workload.pointer("/spec/pod/spec") else {
        return;
    };
    let docs: Vec<Value> = referenced(spec)
        .iter()
        .filter_map(|name| configmaps.iter().find(|c| &c.name == name))
        .map(|c| Value::from(document(c)))
        .collect();
    if let (false, Some(obj)) = (docs.is_empty(), wire.as_object_mut()) {
        obj.insert("configmaps".into(), Value::Array(docs));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cm(name: &str, data: Value) -> StoredObject {
        StoredObject {
            kind: "ConfigMap".into(),
            namespace: "default".into(),
            name: name.into(),
            body: json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "default", "labels": {"a": "b"}},
                "data": data}),
        }
    }

    #[test]
    fn every_kind_of_reference_is_found() {
        let spec = json!({
            "initContainers": [{"envFrom": [{"configMapRef": {"name": "init-env"}}]}],
            "containers": [
                {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "greetings", "key": "g"}}},
                         {"name": "B", "value": "plain"},
                         {"name": "C", "valueFrom": {"secretKeyRef": {"name": "not-a-configmap", "key": "k"}}}]},
                {"envFrom": [{"configMapRef": {"name": "app-env"}}, {"secretRef": {"name": "s"}}]}
            ],
            "volumes": [{"name": "v", "configMap": {"name": "files"}},
                        {"name": "p", "projected": {"sources": [{"configMap": {"name": "projected"}}]}}]
        });
        let names: Vec<String> = referenced(&spec).into_iter().collect();
        assert_eq!(
            names,
            ["app-env", "files", "greetings", "init-env", "projected"]
        );
        assert!(referenced(&json!({})).is_empty());
        assert!(referenced(&json!({"containers": "nonsense"})).is_empty());
    }

    #[test]
    fn referenced_configmaps_travel_as_yaml_documents_and_missing_ones_are_left_out() {
        let workload = json!({"spec": {"pod": {"spec": {"containers": [
            {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "greetings", "key": "g"}}},
                     {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "g"}}}]}]}}}});
        let mut wire = json!({"name": "web"});
        attach(
            &mut wire,
            &workload,
            &[
                cm("greetings", json!({"g": "hello"})),
                cm("other", json!({})),
            ],
        );
        let docs = wire["configmaps"].as_array().unwrap();
        assert_eq!(docs.len(), 1);
        let doc: Value = serde_norway::from_str(docs[0].as_str().unwrap()).unwrap();
        assert_eq!(
            doc,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "greetings"},
                "data": {"g": "hello"}})
        );
        let mut bare = json!({"name": "web"});
        attach(
            &mut bare,
            &json!({"spec": {"pod": {"spec": {"containers": []}}}}),
            &[],
        );
        assert!(bare.get("configmaps").is_none());
    }
}
