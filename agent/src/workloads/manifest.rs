//! A Flotta workload (the device configuration's `workloads[]`: `name`,
//! the pod spec as YAML in `specification`, `labels`, `annotations`,
//! `configmaps` as YAML documents) turned into the file `podman kube play`
//! runs: a `kind: Pod` document with this agent's labels, then the
//! ConfigMaps, written as JSON documents separated by `---` lines (podman
//! takes JSON as YAML: `PODMAN-4.3.md`, section 9), so only reading YAML
//! is needed.
//!
//! - The pod carries [`MANAGED_LABEL`] and [`SPEC_HASH_LABEL`]: a hash of
//!   everything the server sent for the workload, so a changed
//!   specification, label, ConfigMap, Secret or registry auth file
//!   replaces the pod, and nothing else does (not the link the image policy depends on).
//! - The Secrets the pod references must all be in the configuration
//!   (`secrets.rs`); their data is part of the hash (a changed Secret
//!   replaces the pod) but never of the file.
//! - When pulls are not allowed (a narrow link), every container gets
//!   `imagePullPolicy: Never`: a missing image fails at once instead of
//!   podman trying a registry three times over the radio.
//! - The workload's name becomes the pod's name and a file name: it must
//!   be a DNS-1123 label (what Kubernetes allows for a pod's name, minus
//!   dots), else the workload is refused with a clear error.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::plan::{MANAGED_LABEL, SPEC_HASH_LABEL};
use super::restart::RestartPolicy;
use super::secrets::{Secrets, check_data, referenced as referenced_secrets};

/// The version of the play file this agent writes (part of the spec
/// hash). 2: podman's restart policy is `Never`, the agent restarts.
/// 3: played with the `k8s-file` log driver and a size cap (`tail.rs`).
const PLAY_FORMAT: &str = "3";

/// Why a referenced Secret is not there: missing on the server (its
/// workload says so), or withheld because the configuration came in sealed
/// frames over LoRaWAN or SBD (Secrets go only over mutual TLS).
pub const NOT_SENT: &str = "was not sent with the configuration (missing on the server, or \
     withheld: Secrets travel only over mutual TLS, never in frames over LoRaWAN or SBD)";

/// The longest pod name podman and Kubernetes take.
pub const MAX_NAME_LEN: usize = 63;
/// The longest `specification` or ConfigMap taken, bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 << 10;

/// A workload ready for `podman kube play`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayFile {
    /// The pod's name (the workload's).
    pub name: String,
    /// Hex SHA-256 of what the server sent for the workload.
    pub spec_hash: String,
    /// Every container image the pod needs (init containers included).
    pub images: Vec<String>,
    /// The pod's `restartPolicy`: the agent restarts its containers, with
    /// a back-off; podman is told `Never` (it would restart a crashing
    /// container at once, forever: `PODMAN-4.3.md`, section 2).
    pub restart: RestartPolicy,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The Secrets the pod references (`secrets.rs`), all in the
    /// configuration.
    pub secrets: Vec<String>,
    /// Some Secret is mounted as a volume (needs podman 4.4 or later).
    pub secret_volumes: bool,
    /// The registry auth file (`imageRegistries.authFile`), if sent.
    pub auth_file: Option<String>,
}

/// Why a workload cannot be played.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// No `name`, or one podman would refuse or that is unsafe as a file name.
    #[error("workload name {0:?} is not a DNS-1123 label (a-z, 0-9, '-', at most 63)")]
    BadName(String),
    /// `specification` missing, too large, not YAML or not a pod spec.
    #[error("workload {name}: specification {why}")]
    BadSpecification {
        /// The workload.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A ConfigMap is not a YAML object of `kind: ConfigMap`.
    #[error("workload {name}: ConfigMap {index} {why}")]
    BadConfigMap {
        /// The workload.
        name: String,
        /// Its position in `configmaps`.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A Secret the pod references is not in the configuration, or its
    /// data is not what podman reads.
    #[error("workload {name}: Secret {secret} {why}")]
    BadSecret {
        /// The workload.
        name: String,
        /// The Secret.
        secret: String,
        /// What is wrong.
        why: String,
    },
}

impl ManifestError {
    /// The same configuration fails the same way: only a new one helps.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// Whether `name` is a DNS-1123 label.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn read_yaml(text: &str) -> Result<Value, String> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "is {} bytes, more than {MAX_DOCUMENT_BYTES}",
            text.len()
        ));
    }
    serde_norway::from_str::<Value>(text).map_err(|e| format!("is not YAML: {e}"))
}

/// The play file for `workload` (module docs), which may reference
/// `secrets` (the configuration's); `pulls_allowed`: the link may pull
/// images from a registry.
pub fn play_file(
    workload: &Value,
    secrets: &Secrets,
    pulls_allowed: bool,
) -> Result<PlayFile, ManifestError> {
    let name = workload
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !valid_name(name) {
        return Err(ManifestError::BadName(name.to_owned()));
    }
    let bad_spec = |why: String| ManifestError::BadSpecification {
        name: name.to_owned(),
        why,
    };
    let text = workload
        .get("specification")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_spec("is missing".into()))?;
    let mut spec = read_yaml(text).map_err(bad_spec)?;
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad_spec("has no containers".into()))?;
    if containers.iter().any(|c| !c.is_object()) {
        return Err(bad_spec("has a container that is not an object".into()));
    }
    let restart = match spec.get("restartPolicy") {
        None | Some(Value::Null) => RestartPolicy::Always,
        Some(p) => p.as_str().and_then(RestartPolicy::parse).ok_or_else(|| {
            bad_spec(format!(
                "restartPolicy {p} is not Always, OnFailure or Never"
            ))
        })?,
    };
    spec["restartPolicy"] = "Never".into();
    let mut configmaps = Vec::new();
    for (index, cm) in workload
        .get("configmaps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let bad = |why: String| ManifestError::BadConfigMap {
            name: name.to_owned(),
            index,
            why,
        };
        let v =
            read_yaml(cm.as_str().ok_or_else(|| bad("is not a string".into()))?).map_err(bad)?;
        if v.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
            return Err(bad("is not of kind ConfigMap".into()));
        }
        configmaps.push(v);
    }
    let (secret_names, secret_volumes) = referenced_secrets(&spec);
    let mut used = Vec::new();
    for secret in &secret_names {
        let bad = |why: String| ManifestError::BadSecret {
            name: name.to_owned(),
            secret: secret.clone(),
            why,
        };
        let data = secrets.get(secret).ok_or_else(|| bad(NOT_SENT.into()))?;
        check_data(data).map_err(|e| bad(format!("data {e}")))?;
        used.push((secret.as_str(), data.as_str()));
    }
    let auth_file = workload
        .pointer("/imageRegistries/authFile")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    let spec_hash = hash(workload, &used, auth_file.as_deref());
    let mut images = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                images.push(image.to_owned());
            }
            if !pulls_allowed {
                c.insert("imagePullPolicy".into(), "Never".into());
            }
        }
    }
    let mut labels: Map<String, Value> = workload
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(MANAGED_LABEL.into(), "true".into());
    labels.insert(SPEC_HASH_LABEL.into(), spec_hash.clone().into());
    let mut metadata = json!({ "name": name, "labels": labels });
    if let Some(a) = workload.get("annotations").filter(|a| a.is_object()) {
        metadata["annotations"] = a.clone();
    }
    let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec });
    let mut bytes = serde_json::to_vec(&pod).expect("a Value serialises");
    for cm in &configmaps {
        bytes.extend_from_slice(b"\n---\n");
        bytes.extend_from_slice(&serde_json::to_vec(cm).expect("a Value serialises"));
    }
    bytes.push(b'\n');
    Ok(PlayFile {
        name: name.to_owned(),
        spec_hash,
        images,
        restart,
        bytes,
        secrets: secret_names.into_iter().collect(),
        secret_volumes,
        auth_file,
    })
}

/// Hex SHA-256 of what makes the pod: the name, the specification and
/// ConfigMaps as sent, the labels and annotations in key order (whatever
/// order the JSON had them in, or serde_json keeps), the data of the
/// `secrets` it references (name order) and the registry auth file.
fn hash(workload: &Value, secrets: &[(&str, &str)], auth_file: Option<&str>) -> String {
    let mut h = Sha256::new();
    let mut field = |tag: &str, text: &str| {
        h.update(tag.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    };
    let text = |k: &str| workload.get(k).and_then(Value::as_str).unwrap_or_default();
    // What the agent makes of the same input changed: pods made by an
    // older agent are made again.
    field("play-format", PLAY_FORMAT);
    field("name", text("name"));
    field("specification", text("specification"));
    for map in ["labels", "annotations"] {
        let sorted: std::collections::BTreeMap<&String, &Value> = workload
            .get(map)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .collect();
        for (k, v) in sorted {
            field(map, k);
            field("=", v.as_str().unwrap_or_default());
        }
    }
    for cm in workload
        .get("configmaps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        field("configmap", cm.as_str().unwrap_or_default());
    }
    for (name, data) in secrets {
        field("secret", name);
        field("=", data);
    }
    if let Some(auth) = auth_file {
        field("auth-file", auth);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
