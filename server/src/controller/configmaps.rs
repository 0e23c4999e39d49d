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
//! ew`) — [`sync_conditions`], each controller pass; the device's `kube
//! play` then fails with podman's own message, as a `Failed` event.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::objects::Kind;
use crate::store::{Store, StoreError, StoredObject};

/// Names of the ConfigMaps `pod_spec` references.
pub fn referenced(pod_spec: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add = |v: Option<&Value>| {
        if let Some(n) = v.and_then(|v| v.get("name")).and_then(Value::as_str) {
            names.insert(n.to_owned());
        }
    };
    let list = |v: &Value, key: &str| -> Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for key in ["containers", "initContainers"] {
        for c in list(pod_spec, key) {
            for e in list(&c, "env") {
                add(e.pointer("/valueFrom/configMapKeyRef"));
            }
            for e in list(&c, "envFrom") {
                add(e.get("configMapRef"));
            }
        }
    }
    for v in list(pod_spec, "volumes") {
        add(v.get("configMap"));
        for s in list(v.get("projected").unwrap_or(&Value::Null), "sources") {
            add(s.get("configMap"));
        }
    }
    names
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

/// The `ReferencesResolved` condition for the `missing` names, keeping
/// `lastTransitionTime` of `current` when the status did not change.
fn condition(missing: &[String], current: Option<&Value>, now: &str) -> Value {
    let (status, reason, message) = if missing.is_empty() {
        (
            "True",
            "Resolved",
            "every referenced ConfigMap exists".to_owned(),
        )
    } else {
        (
            "False",
            "MissingConfigMap",
            format!(
                "ConfigMap {} not found in the workload's namespace; devices get the workload without it",
                missing.join(", ")
            ),
        )
    };
    let since = current
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| Value::from(now));
    serde_json::json!({"type": "ReferencesResolved", "status": status, "reason": reason,
        "message": message, "lastTransitionTime": since})
}

/// Write each EdgeWorkload's `ReferencesResolved` condition (module docs)
/// where it changed; `now` is an RFC 3339 time. Returns how many were
/// written.
pub fn sync_conditions(store: &dyn Store, now: &str) -> Result<usize, StoreError> {
    let workloads = store.list_objects(Kind::EdgeWorkload.as_str(), None)?;
    let configmaps = store.list_objects(Kind::ConfigMap.as_str(), None)?;
    let mut written = 0;
    for w in workloads {
        let same_ns: Vec<StoredObject> = configmaps
            .iter()
            .filter(|c| c.namespace == w.namespace)
            .cloned()
            .collect();
        let gone = missing(&w.body, &same_ns);
        let current = w
            .body
            .pointer("/status/conditions")
            .and_then(Value::as_array);
        let old = current.and_then(|l| {
            l.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("ReferencesResolved"))
        });
        let new = condition(&gone, old, now);
        if old == Some(&new) {
            continue;
        }
        let mut others: Vec<Value> = current
            .into_iter()
            .flatten()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some("ReferencesResolved"))
            .cloned()
            .collect();
        others.push(new);
        let mut body = w.body.clone();
        if !body.get("status").is_some_and(Value::is_object) {
            body["status"] = serde_json::json!({});
        }
        body["status"]["conditions"] = Value::Array(others);
        store.put_object(&StoredObject { body, ..w })?;
        written += 1;
    }
    Ok(written)
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

    #[test]
    fn a_missing_configmap_is_a_condition_until_it_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
        let workload = StoredObject {
            kind: "EdgeWorkload".into(),
            namespace: "default".into(),
            name: "web".into(),
            body: json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"pod": {"spec": {"containers": [{"envFrom": [{"configMapRef": {"name": "greetings"}}]}]}}}}),
        };
        store.put_object(&workload).unwrap();
        let cond = || {
            let w = store
                .get_object("EdgeWorkload", "default", "web")
                .unwrap()
                .unwrap();
            w.body["status"]["conditions"][0].clone()
        };
        assert_eq!(sync_conditions(&store, "2026-12-02T10:00:00Z").unwrap(), 1);
        let c = cond();
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("MissingConfigMap"))
        );
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("ConfigMap greetings not found"),
            "{c}"
        );
        // Nothing changed: nothing written, the transition time kept.
        assert_eq!(sync_conditions(&store, "2026-12-02T11:00:00Z").unwrap(), 0);
        // In another namespace it does not count.
        let mut other = cm("greetings", json!({"g": "x"}));
        other.namespace = "plant".into();
        store.put_object(&other).unwrap();
        assert_eq!(sync_conditions(&store, "2026-12-02T11:00:00Z").unwrap(), 0);
        store
            .put_object(&cm("greetings", json!({"g": "x"})))
            .unwrap();
        assert_eq!(sync_conditions(&store, "2026-12-02T12:00:00Z").unwrap(), 1);
        let c = cond();
        assert_eq!(c["status"], "True");
        assert_eq!(c["lastTransitionTime"], "2026-12-02T12:00:00Z");
    }
}
