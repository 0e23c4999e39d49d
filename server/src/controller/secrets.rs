//! The Secrets a workload references, sent as Flotta sends them:
//!
//! - Secrets its pod spec references (env `valueFrom.secretKeyRef`,
//!   `envFrom[].secretRef`, `volumes[].secret.secretName`, projected
//!   volumes' `sources[].secret`) go in the device configuration's
//!   top-level `secrets` list, each as `{name, data}` with `data` the
//!   Secret's `data` map (base64 values) as a JSON string: what the agent
//!   gives `podman secret create`, and what podman's `kube play` reads.
//! - The Secret named by `spec.imageRegistries.secretRef` (of type
//!   `kubernetes.io/dockerconfigjson`) becomes the workload's
//!   `imageRegistries.authFile`: the auth file itself, which the agent
//!   hands `kube play --authfile` when it may pull.
//!
//! Secrets travel only inside the device's configuration over mutual TLS:
//! a configuration offered in sealed frames has them left out
//! (`frames/withheld.rs`; a device on UDP is told to fetch it over TLS).
//! Only Secrets of the workload's namespace count; a missing one is left
//! out and said on the workload (`references.rs`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::objects::core_v1::{DOCKER_CONFIG_TYPE, docker_config};
use crate::store::StoredObject;

/// Names of the Secrets `pod_spec` references.
pub fn referenced(pod_spec: &Value) -> BTreeSet<String> {
    super::pod_refs::references(pod_spec).secrets
}

/// `spec.imageRegistries.secretRef.name` of an EdgeWorkload object.
pub fn registry_secret(workload: &Value) -> Option<&str> {
    workload
        .pointer("/spec/imageRegistries/secretRef/name")
        .and_then(Value::as_str)
}

/// `secret` as an entry of the configuration's `secrets` list.
pub fn wire(secret: &StoredObject) -> Value {
    let data = secret
        .body
        .get("data")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    serde_json::json!({"name": secret.name, "data": data.to_string()})
}

/// The auth file of the registry Secret `name` among `secrets`, or why it
/// cannot be had.
fn auth_file(name: &str, secrets: &[StoredObject]) -> Result<String, String> {
    let s = secrets
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("Secret {name} not found"))?;
    let kind = s
        .body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Opaque");
    if kind != DOCKER_CONFIG_TYPE {
        return Err(format!(
            "Secret {name} is of type {kind}, not {DOCKER_CONFIG_TYPE}"
        ));
    }
    let data = s.body.get("data").and_then(Value::as_object);
    docker_config(data.unwrap_or(&Map::new())).map_err(|e| format!("Secret {name}: {e}"))
}

/// What is wrong with the Secrets `workload` (an EdgeWorkload object)
/// references, given `secrets` of its namespace: one line per problem.
pub fn problems(workload: &Value, secrets: &[StoredObject]) -> Vec<String> {
    let mut out: Vec<String> = workload
        .pointer("/spec/pod/spec")
        .map(referenced)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !secrets.iter().any(|s| &s.name == n))
        .map(|n| format!("Secret {n} not found"))
        .collect();
    if let Some(Err(e)) = registry_secret(workload).map(|n| auth_file(n, secrets)) {
        out.push(e);
    }
    out
}

/// Set `wire` (the Flotta `workload` of `workload`)'s
/// `imageRegistries.authFile` from its registry Secret among `secrets` (of
/// its namespace), and return the `secrets` entries its pod spec
/// references, in name order (module docs).
pub fn attach(wire_workload: &mut Value, workload: &Value, secrets: &[StoredObject]) -> Vec<Value> {
    if let (Some(Ok(file)), Some(obj)) = (
        registry_secret(workload).map(|n| auth_file(n, secrets)),
        wire_workload.as_object_mut(),
    ) {
        obj.insert(
            "imageRegistries".into(),
            serde_json::json!({ "authFile": file }),
        );
    }
    let Some(spec) = workload.pointer("/spec/pod/spec") else {
        return Vec::new();
    };
    referenced(spec)
        .iter()
        .filter_map(|name| secrets.iter().find(|s| &s.name == name))
        .map(wire)
        .collect()
}

#[cfg(test)]
mod tests;
