//! Where Flotta's objects live: `objects = "embedded"` (the store's own
//! table, the default) or `objects = "kubernetes"` (a cluster's CRDs, see
//! `crate::cluster`), with the keys of the Kubernetes mode.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// `objects`: the source of EdgeDevices, EdgeDeviceSets, EdgeWorkloads,
/// EdgeDeviceSignedRequests, ConfigMaps and Secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectsBackend {
    /// The embedded store (`flotta-server apply`, no cluster).
    #[default]
    Embedded,
    /// A Kubernetes cluster with Flotta's CRDs (`flotta-server crds |
    /// kubectl apply -f -`): `kubectl` manages them.
    Kubernetes,
}

/// The Kubernetes mode's settings (`kubeconfig_path`, `kubernetes_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSettings {
    /// A kubeconfig file; `None`: `$KUBECONFIG`, `~/.kube/config`, then
    /// the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Status writes per second at most (coalesced per object).
    pub status_writes_per_second: u32,
    /// Deadline of one API request (watches excepted).
    pub request_timeout: Duration,
    /// Longest wait at start for the first full list of every kind.
    pub sync_timeout: Duration,
}

impl Config {
    /// The Kubernetes mode's settings.
    pub fn kubernetes_settings(&self) -> KubernetesSettings {
        KubernetesSettings {
            kubeconfig: self.kubeconfig_path.clone(),
            status_writes_per_second: self.kubernetes_status_writes_per_second,
            request_timeout: Duration::from_secs(self.kubernetes_request_timeout_seconds),
            sync_timeout: Duration::from_secs(self.kubernetes_sync_timeout_seconds),
        }
    }

    /// Check the Kubernetes keys.
    pub(super) fn validate_kubernetes(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if !(1..=10_000).contains(&self.kubernetes_status_writes_per_second) {
            return invalid("kubernetes_status_writes_per_second", "must be 1..=10000");
        }
        if !(1..=300).contains(&self.kubernetes_request_timeout_seconds) {
            return invalid("kubernetes_request_timeout_seconds", "must be 1..=300");
        }
        if !(1..=3600).contains(&self.kubernetes_sync_timeout_seconds) {
            return invalid("kubernetes_sync_timeout_seconds", "must be 1..=3600");
        }
        if self.objects == ObjectsBackend::Embedded && self.kubeconfig_path.is_some() {
            return invalid(
                "kubeconfig_path",
                "is only read with objects = \"kubernetes\"",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_by_default_and_kubernetes_by_key() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.objects, ObjectsBackend::Embedded);
        let c = Config::from_toml_str(
            "objects = \"kubernetes\"\nkubeconfig_path = \"/k\"\nkubernetes_status_writes_per_second = 5",
        )
        .unwrap();
        assert_eq!(c.objects, ObjectsBackend::Kubernetes);
        let k = c.kubernetes_settings();
        assert_eq!(k.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(k.status_writes_per_second, 5);
    }

    #[test]
    fn refuses_unknown_backends_and_stray_or_bad_keys() {
        assert!(Config::from_toml_str("objects = \"etcd\"").is_err());
        let e = Config::from_toml_str("kubeconfig_path = \"/k\"").unwrap_err();
        assert!(e.to_string().contains("kubeconfig_path"), "{e}");
        let e = Config::from_toml_str("kubernetes_status_writes_per_second = 0").unwrap_err();
        assert!(e.to_string().contains("1..=10000"), "{e}");
    }
}
