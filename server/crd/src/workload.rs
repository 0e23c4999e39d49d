//! [`EdgeWorkload`]: a pod to run on one device, or on every device a label
//! selector picks.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::NameRef;
use crate::device_config::default_metrics_interval_seconds;

/// Desired state of a workload.
///
/// Normally exactly one of `device` and `deviceSelector` is set; Flotta's schema
/// does not enforce it, so neither does this type.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "management.project-flotta.io",
    version = "v1alpha1",
    kind = "EdgeWorkload",
    plural = "edgeworkloads",
    singular = "edgeworkload",
    namespaced,
    status = "EdgeWorkloadStatus",
    derive = "PartialEq",
    doc = "A workload (a pod run by podman) deployed to edge devices."
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeWorkloadSpec {
    /// Files synchronised between the device and object storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataConfiguration>,
    /// Name of the single EdgeDevice to run on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Labels picking the EdgeDevices to run on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_selector: Option<LabelSelector>,
    /// Credentials for pulling the images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_registries: Option<ImageRegistriesConfiguration>,
    /// Key into the device's `spec.logCollection` naming where logs go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_collection: Option<String>,
    /// Scraping of the workload's own metrics endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<WorkloadMetricsConfiguration>,
    /// The pod to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
    /// Workload type; Flotta knows only `pod`.
    #[serde(rename = "type")]
    pub type_: String,
}

/// [`EdgeWorkloadSpec::type_`] of a pod workload, the only kind Flotta runs.
pub const WORKLOAD_TYPE_POD: &str = "pod";

/// Observed state of a workload; Flotta records it per device instead, in the
/// EdgeDevice status. flotta's server adds conditions: `ReferencesResolved`
/// (do the ConfigMaps and Secrets it references exist?), declared here so an
/// API server does not prune them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EdgeWorkloadStatus {
    /// Kubernetes-style conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A pod template: only the spec, the metadata comes from the workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Pod {
    /// The pod's spec, as in Kubernetes.
    pub spec: PodSpec,
}

/// Data synchronisation between the device and object storage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DataConfiguration {
    /// Paths uploaded from the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<DataPath>>,
    /// Paths downloaded to the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<DataPath>>,
}

/// One synchronised path.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DataPath {
    /// Where the data comes from.
    pub source: String,
    /// Where the data goes.
    pub target: String,
}

/// Image registry credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRegistriesConfiguration {
    /// Secret holding an `auth.json` for podman.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<NameRef>,
}

/// Scraping of a workload's metrics endpoints.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadMetricsConfiguration {
    /// ConfigMap listing the metric names to keep; all are kept when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_list: Option<NameRef>,
    /// Per-container overrides, keyed by container name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<BTreeMap<String, ContainerMetricsConfiguration>>,
    /// Seconds between two scrapes.
    #[serde(default = "default_metrics_interval_seconds")]
    #[schemars(range(min = 0))]
    pub interval: i32,
    /// HTTP path of the metrics endpoint.
    #[serde(default = "default_metrics_path")]
    pub path: String,
    /// Port of the metrics endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub port: Option<i32>,
}

impl Default for WorkloadMetricsConfiguration {
    fn default() -> Self {
        Self {
            allow_list: None,
            containers: None,
            interval: default_metrics_interval_seconds(),
            path: default_metrics_path(),
            port: None,
        }
    }
}

/// Metrics endpoint of one container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ContainerMetricsConfiguration {
    /// `true` stops scraping this container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// HTTP path of the metrics endpoint.
    #[serde(default = "default_metrics_path")]
    pub path: String,
    /// Port of the metrics endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub port: Option<i32>,
}

impl Default for ContainerMetricsConfiguration {
    fn default() -> Self {
        Self {
            disabled: None,
            path: default_metrics_path(),
            port: None,
        }
    }
}

/// Metrics path the API server fills in when a manifest leaves it out.
pub const DEFAULT_METRICS_PATH: &str = "/";

fn default_metrics_path() -> String {
    DEFAULT_METRICS_PATH.to_owned()
}
