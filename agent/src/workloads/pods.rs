//! What podman says about its pods: `podman pod ps --format json` decoded
//! into [`ObservedPod`]s for the [`plan`](super::plan). The bytes come
//! from another program (and any podman version): checked against a size
//! limit before decoding, unknown fields ignored, missing ones defaulted,
//! and never trusted to be well formed (`tests` below; fuzzed by
//! `agent/fuzz` `podman_pods`).
//!
//! Measured with podman 4.3.1 (`PODMAN-4.3.md`, section 4): an array of
//! `{"Name", "Status", "Labels", "InfraId", "Containers": [{"Id", "Names",
//! "Status"}]}`; `Status` is `Created` (a `kube play` that failed before
//! starting), `Running`, `Degraded`, `Exited`, `Stopped` (or `Paused`,
//! `Dead`, `Error`); podman prints `[]` or nothing when there is no pod.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::plan::{MANAGED_LABEL, ObservedPod, SPEC_HASH_LABEL};

/// The most output taken from `podman pod ps` (a pod's entry is well
/// under 2 KiB: thousands of pods).
pub const MAX_POD_PS_BYTES: usize = 4 << 20;

/// Why `podman pod ps` output was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    /// Longer than [`MAX_POD_PS_BYTES`].
    #[error("podman pod ps printed {0} bytes, more than {MAX_POD_PS_BYTES}")]
    TooLarge(usize),
    /// Not the JSON podman prints.
    #[error("podman pod ps printed something else than its JSON: {0}")]
    Malformed(String),
}

impl PodsError {
    /// Whether asking podman again may help (a podman upgraded mid-way
    /// may print the expected format next time; the size will not shrink).
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

#[derive(Deserialize)]
struct PsPod {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "InfraId", default)]
    infra_id: String,
    #[serde(rename = "Containers", default)]
    containers: Option<Vec<PsContainer>>,
}

#[derive(Deserialize)]
struct PsContainer {
    #[serde(rename = "Id", default)]
    id: String,
}

/// The pods in `podman pod ps --format json` output. Pods without a name
/// are skipped (podman always names them; nothing can be done with one
/// that is not).
pub fn decode_pod_ps(bytes: &[u8]) -> Result<Vec<ObservedPod>, PodsError> {
    if bytes.len() > MAX_POD_PS_BYTES {
        return Err(PodsError::TooLarge(bytes.len()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let pods: Vec<PsPod> =
        serde_json::from_slice(bytes).map_err(|e| PodsError::Malformed(e.to_string()))?;
    Ok(pods
        .into_iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| {
            let labels = p.labels.unwrap_or_default();
            let app_containers = p
                .containers
                .unwrap_or_default()
                .iter()
                .filter(|c| c.id != p.infra_id)
                .count();
            ObservedPod {
                managed: labels.get(MANAGED_LABEL).is_some_and(|v| v == "true"),
                spec_hash: labels.get(SPEC_HASH_LABEL).cloned(),
                incomplete: p.status == "Created" || app_containers == 0,
                name: p.name,
            }
        })
        .collect())
}

/// For the fuzz target: any bytes decode or fail cleanly, never panic;
/// what decodes keeps its invariants.
pub fn fuzz_pod_ps(bytes: &[u8]) {
    if let Ok(pods) = decode_pod_ps(bytes) {
        for p in &pods {
            assert!(!p.name.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// As podman 4.3.1 printed it (PODMAN-4.3.md), labels renamed to ours.
    const MEASURED: &str = r#"[{"Cgroup":"/libpod_parent",
      "Containers":[{"Id":"1191aa","Names":"wl1-app","Status":"running"},
                    {"Id":"84d3bb","Names":"1bb918b8c196-infra","Status":"running"}],
      "Created":"2026-12-02T07:37:47.030067681Z","Id":"1bb9cc","InfraId":"84d3bb","Name":"wl1",
      "Namespace":"","Networks":[],"Status":"Running",
      "Labels":{"io.flotta.agent/managed":"true","io.flotta.agent/spec-hash":"abc123"}},
     {"Containers":[{"Id":"77","Names":"x-infra","Status":"created"}],"InfraId":"77",
      "Name":"half","Status":"Created","Labels":{"io.flotta.agent/managed":"true"}},
     {"Containers":[{"Id":"1","Names":"db-main","Status":"running"}],"InfraId":"2",
      "Name":"users-own","Status":"Running","Labels":null}]"#;

    #[test]
    fn decodes_what_podman_4_3_prints() {
        let pods = decode_pod_ps(MEASURED.as_bytes()).unwrap();
        assert_eq!(
            pods,
            [
                ObservedPod {
                    name: "wl1".into(),
                    managed: true,
                    spec_hash: Some("abc123".into()),
                    incomplete: false,
                },
                ObservedPod {
                    name: "half".into(),
                    managed: true,
                    spec_hash: None,
                    incomplete: true,
                },
                ObservedPod {
                    name: "users-own".into(),
                    managed: false,
                    spec_hash: None,
                    incomplete: false,
                },
            ]
        );
    }

    #[test]
    fn no_pods_is_empty_output_or_an_empty_array() {
        assert!(decode_pod_ps(b"").unwrap().is_empty());
        assert!(decode_pod_ps(b"\n").unwrap().is_empty());
        assert!(decode_pod_ps(b"[]\n").unwrap().is_empty());
    }

    #[test]
    fn other_output_is_a_clear_error() {
        let e = decode_pod_ps(b"Error: something went wrong").unwrap_err();
        assert!(e.to_string().contains("podman pod ps"), "{e}");
        assert!(e.is_retriable());
        let big = vec![b' '; MAX_POD_PS_BYTES + 1];
        assert!(matches!(decode_pod_ps(&big), Err(PodsError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            fuzz_pod_ps(&bytes);
        }

        /// Pods podman could print: each comes back with its name, and ours
        /// only when labelled so.
        #[test]
        fn printed_pods_round_trip(
            pods in prop::collection::vec(
                ("[a-z][a-z0-9-]{0,20}", any::<bool>(), prop::option::of("[0-9a-f]{1,64}"), any::<bool>()),
                0..10,
            )
        ) {
            let json: Vec<serde_json::Value> = pods
                .iter()
                .map(|(name, managed, hash, running)| {
                    let mut labels = serde_json::Map::new();
                    if *managed {
                        labels.insert(MANAGED_LABEL.into(), "true".into());
                    }
                    if let Some(h) = hash {
                        labels.insert(SPEC_HASH_LABEL.into(), h.as_str().into());
                    }
                    serde_json::json!({
                        "Name": name,
                        "Status": if *running { "Running" } else { "Exited" },
                        "Labels": labels,
                        "InfraId": "i",
                        "Containers": [{"Id": "i"}, {"Id": "a"}],
                    })
                })
                .collect();
            let bytes = serde_json::to_vec(&json).unwrap();
            let got = decode_pod_ps(&bytes).unwrap();
            prop_assert_eq!(got.len(), pods.len());
            for (g, (name, managed, hash, _)) in got.iter().zip(&pods) {
                prop_assert_eq!(&g.name, name);
                prop_assert_eq!(g.managed, *managed);
                prop_assert_eq!(&g.spec_hash, hash);
                prop_assert!(!g.incomplete);
            }
        }
    }
}
