//! Whether what each EdgeWorkload references exists: ConfigMaps
//! (`configmaps.rs`) and Secrets (`secrets.rs`) of its namespace. Each
//! controller pass writes the workload's `ReferencesResolved` condition
//! (shown by `describe ew`): `True`, or `False` with reason
//! `MissingConfigMap`, `MissingSecret` or, when both kinds are wanting,
//! `MissingReferences`, and every problem in its message. Devices get the
//! workload without what is missing; their `kube play` then fails with
//! podman's own words, as a `Failed` event.

use serde_json::Value;

use super::{configmaps, secrets};
use crate::objects::{Kind, ObjectSource};
use crate::store::{StoreError, StoredObject};

/// The condition's type.
pub const CONDITION: &str = "ReferencesResolved";

/// The `ReferencesResolved` condition for the problems found, keeping
/// `lastTransitionTime` of `current` when the status did not change.
fn condition(
    missing_configmaps: &[String],
    secret_problems: &[String],
    current: Option<&Value>,
    now: &str,
) -> Value {
    let mut lines: Vec<String> = Vec::new();
    if !missing_configmaps.is_empty() {
        lines.push(format!(
            "ConfigMap {} not found in the workload's namespace",
            missing_configmaps.join(", ")
        ));
    }
    lines.extend(secret_problems.iter().cloned());
    let (status, reason, message) =
        match (missing_configmaps.is_empty(), secret_problems.is_empty()) {
            (true, true) => (
                "True",
                "Resolved",
                "every referenced ConfigMap and Secret exists".to_owned(),
            ),
            (false, true) => ("False", "MissingConfigMap", lines.join("; ")),
            (true, false) => ("False", "MissingSecret", lines.join("; ")),
            (false, false) => ("False", "MissingReferences", lines.join("; ")),
        };
    let message = if status == "False" {
        format!("{message}; devices get the workload without it")
    } else {
        message
    };
    let since = current
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| Value::from(now));
    serde_json::json!({"type": CONDITION, "status": status, "reason": reason,
        "message": message, "lastTransitionTime": since})
}

/// Write each EdgeWorkload's `ReferencesResolved` condition (module docs)
/// where it changed; `now` is an RFC 3339 time. Returns how many were
/// written.
pub fn sync_conditions(objects: &dyn ObjectSource, now: &str) -> Result<usize, StoreError> {
    let workloads = objects.list(Kind::EdgeWorkload.as_str(), None)?;
    let configmaps = objects.list(Kind::ConfigMap.as_str(), None)?;
    let secret_objects = objects.list(Kind::Secret.as_str(), None)?;
    let same_ns = |all: &[StoredObject], ns: &str| -> Vec<StoredObject> {
        all.iter().filter(|o| o.namespace == ns).cloned().collect()
    };
    let mut written = 0;
    for w in workloads {
        let gone = configmaps::missing(&w.body, &same_ns(&configmaps, &w.namespace));
        let wrong = secrets::problems(&w.body, &same_ns(&secret_objects, &w.namespace));
        let current = w
            .body
            .pointer("/status/conditions")
            .and_then(Value::as_array);
        let old = current.and_then(|l| {
            l.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION))
        });
        let new = condition(&gone, &wrong, old, now);
        if old == Some(&new) {
            continue;
        }
        let mut others: Vec<Value> = current
            .into_iter()
            .flatten()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some(CONDITION))
            .cloned()
            .collect();
        others.push(new);
        let mut status = w
            .body
            .get("status")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        status["conditions"] = Value::Array(others);
        objects.put_status(&w.kind, &w.namespace, &w.name, &status)?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Store;

    fn object(kind: &str, name: &str, body: Value) -> StoredObject {
        StoredObject {
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            body,
        }
    }

    fn cm(name: &str, data: Value) -> StoredObject {
        object(
            "ConfigMap",
            name,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "default"}, "data": data}),
        )
    }

    fn secret(name: &str, kind: &str, data: Value) -> StoredObject {
        object(
            "Secret",
            name,
            json!({"apiVersion": "v1", "kind": "Secret", "type": kind,
                "metadata": {"name": name, "namespace": "default"}, "data": data}),
        )
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

    #[test]
    fn missing_or_wrong_secrets_are_said_with_the_configmaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("flotta.db")).unwrap();
        store
            .put_object(&object(
                "EdgeWorkload",
                "web",
                json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"imageRegistries": {"secretRef": {"name": "pull"}},
                    "pod": {"spec": {"containers": [{
                        "envFrom": [{"configMapRef": {"name": "greetings"}}, {"secretRef": {"name": "db"}}]}]}}}}),
            ))
            .unwrap();
        let cond = || {
            store
                .get_object("EdgeWorkload", "default", "web")
                .unwrap()
                .unwrap()
                .body["status"]["conditions"][0]
                .clone()
        };
        sync_conditions(&store, "2026-12-02T10:00:00Z").unwrap();
        let c = cond();
        assert_eq!(c["reason"], "MissingReferences", "{c}");
        let message = c["message"].as_str().unwrap();
        for part in [
            "ConfigMap greetings",
            "Secret db not found",
            "Secret pull not found",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        store.put_object(&cm("greetings", json!({}))).unwrap();
        store
            .put_object(&secret("db", "Opaque", json!({})))
            .unwrap();
        // The registry Secret exists but holds no auth file.
        store
            .put_object(&secret("pull", "Opaque", json!({})))
            .unwrap();
        sync_conditions(&store, "2026-12-02T11:00:00Z").unwrap();
        let c = cond();
        assert_eq!(c["reason"], "MissingSecret", "{c}");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("Secret pull is of type Opaque, not kubernetes.io/dockerconfigjson"),
            "{c}"
        );
        let auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            r#"{"auths": {"registry.example": {"auth": "dTpw"}}}"#,
        );
        store
            .put_object(&secret(
                "pull",
                "kubernetes.io/dockerconfigjson",
                json!({".dockerconfigjson": auth}),
            ))
            .unwrap();
        assert_eq!(sync_conditions(&store, "2026-12-02T12:00:00Z").unwrap(), 1);
        assert_eq!(cond()["status"], "True");
    }
}
