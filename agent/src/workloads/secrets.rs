//! The Secrets workloads reference, as podman secrets.
//!
//! The server sends each Secret the device's workloads reference once, in
//! the configuration's top-level `secrets` list: `{name, data}`, `data`
//! being the Secret's data map (base64 values) as a JSON string. That
//! string is exactly what podman's `kube play` reads from a podman secret
//! for env `secretKeyRef` and `envFrom.secretRef` (podman 4.3 takes only
//! this form: `PODMAN-4.3.md`, section 8), so it is handed to
//! `podman secret create` as it came.
//!
//! - Secrets this agent made carry [`MANAGED_LABEL`] and, under
//!   [`SPEC_HASH_LABEL`], a hash of their data: a changed Secret is made
//!   again, an unchanged one is left alone, and a secret of the same name
//!   that a user made is never touched (the workloads needing it fail
//!   with a clear message instead).
//! - A workload's spec hash covers the data of the Secrets it references
//!   (`manifest.rs`): a changed Secret replaces the pods that read it.
//! - Secrets no desired workload references any more are removed, after
//!   the pods that used them.
//! - The data lives in podman's secret store and in `desired.json`
//!   (mode 0600), never in play files or logs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::plan::{MANAGED_LABEL, SPEC_HASH_LABEL};

/// The configuration's Secrets: name → data (a JSON string).
pub type Secrets = BTreeMap<String, String>;

/// The Secrets of a configuration message; entries without a name or
/// data are left out (a workload needing them then says so).
pub fn from_message(message: &Value) -> Secrets {
    message
        .get("secrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s.get("name")?.as_str()?.to_owned(),
                s.get("data")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Names of the Secrets a pod spec references, and whether any is
/// mounted as a volume (which podman 4.3 cannot do).
pub fn referenced(pod_spec: &Value) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut as_volume = false;
    let list = |v: &Value, key: &str| -> Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let name_at = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    for key in ["containers", "initContainers"] {
        for c in list(pod_spec, key) {
            for e in list(&c, "env") {
                names.extend(name_at(&e, "/valueFrom/secretKeyRef/name"));
            }
            for e in list(&c, "envFrom") {
                names.extend(name_at(&e, "/secretRef/name"));
            }
        }
    }
    for v in list(pod_spec, "volumes") {
        let mut found: Vec<String> = name_at(&v, "/secret/secretName").into_iter().collect();
        for s in list(v.get("projected").unwrap_or(&Value::Null), "sources") {
            found.extend(name_at(&s, "/secret/name"));
        }
        as_volume |= !found.is_empty();
        names.extend(found);
    }
    (names, as_volume)
}

/// Why a Secret's data cannot be given to podman: it must be a JSON map
/// of strings (the base64 values).
pub fn check_data(data: &str) -> Result<(), String> {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(m)) if m.values().all(Value::is_string) => Ok(()),
        Ok(_) => Err("is not a map of base64 strings".into()),
        Err(e) => Err(format!("is not JSON: {e}")),
    }
}

/// Hex SHA-256 of a Secret's data: the [`SPEC_HASH_LABEL`] of the podman
/// secret made from it.
pub fn data_hash(data: &str) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A podman secret as `podman secret inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSecret {
    /// Its name.
    pub name: String,
    /// Made by this agent ([`MANAGED_LABEL`] is `true`).
    pub managed: bool,
    /// Its [`SPEC_HASH_LABEL`], if any.
    pub hash: Option<String>,
}

/// The Go template `podman secret inspect --format` is given: name,
/// managed label, hash label, tab-separated (podman 4.3's `secret ls
/// --format json` prints the word `json`, and its `ls` shows no labels).
pub fn inspect_format() -> String {
    format!(
        "{{{{.Spec.Name}}}}\t{{{{index .Spec.Labels \"{MANAGED_LABEL}\"}}}}\t{{{{index .Spec.Labels \"{SPEC_HASH_LABEL}\"}}}}"
    )
}

/// Lines printed with [`inspect_format`]; malformed lines are skipped
/// (podman prints `<no value>` for a missing label).
pub fn decode_inspect(out: &str) -> Vec<ObservedSecret> {
    out.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next().filter(|n| !n.is_empty())?;
            let label = |v: Option<&'_ str>| {
                v.filter(|v| !v.is_empty() && *v != "<no value>")
                    .map(str::to_owned)
            };
            let managed = label(f.next()).as_deref() == Some("true");
            let hash = label(f.next());
            Some(ObservedSecret {
                name: name.to_owned(),
                managed,
                hash,
            })
        })
        .collect()
}

/// What to do about one wanted Secret, given podman's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAction {
    /// It is there with this data.
    Keep,
    /// Not there: create it.
    Create,
    /// Ours, with other data: remove, then create.
    Replace,
    /// A secret of that name that this agent did not make.
    Foreign,
}

/// [`SecretAction`] for the Secret `name` with `data`.
pub fn action(name: &str, data: &str, observed: &[ObservedSecret]) -> SecretAction {
    match observed.iter().find(|s| s.name == name) {
        None => SecretAction::Create,
        Some(s) if !s.managed => SecretAction::Foreign,
        Some(s) if s.hash.as_deref() == Some(data_hash(data).as_str()) => SecretAction::Keep,
        Some(_) => SecretAction::Replace,
    }
}

#[cfg(test)]
mod tests;
