//! The ConfigMaps and Secrets a pod spec references by name: env
//! `valueFrom` (`configMapKeyRef`, `secretKeyRef`) and `envFrom`
//! (`configMapRef`, `secretRef`) of containers and init containers, and
//! volumes (`configMap.name`, `secret.secretName`, and the `configMap` /
//! `secret` sources of projected volumes). Read from JSON, so a pod spec
//! of any shape is walked without failing: what is not where Kubernetes
//! puts it is not a reference.

use std::collections::BTreeSet;

use serde_json::Value;

/// What [`references`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PodReferences {
    /// ConfigMap names.
    pub configmaps: BTreeSet<String>,
    /// Secret names.
    pub secrets: BTreeSet<String>,
}

/// The names `pod_spec` references (module docs).
pub fn references(pod_spec: &Value) -> PodReferences {
    let mut refs = PodReferences::default();
    let list = |v: &Value, key: &str| -> Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let name = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    for key in ["containers", "initContainers"] {
        for c in list(pod_spec, key) {
            for e in list(&c, "env") {
                refs.configmaps
                    .extend(name(&e, "/valueFrom/configMapKeyRef/name"));
                refs.secrets
                    .extend(name(&e, "/valueFrom/secretKeyRef/name"));
            }
            for e in list(&c, "envFrom") {
                refs.configmaps.extend(name(&e, "/configMapRef/name"));
                refs.secrets.extend(name(&e, "/secretRef/name"));
            }
        }
    }
    for v in list(pod_spec, "volumes") {
        refs.configmaps.extend(name(&v, "/configMap/name"));
        refs.secrets.extend(name(&v, "/secret/secretName"));
        for s in list(v.get("projected").unwrap_or(&Value::Null), "sources") {
            refs.configmaps.extend(name(&s, "/configMap/name"));
            refs.secrets.extend(name(&s, "/secret/name"));
        }
    }
    refs
}
