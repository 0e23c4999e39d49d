//! [`EdgeDeviceSet`]: configuration shared by a group of edge devices.
//!
//! A device joins a set through the [`MEMBER_OF`](crate::labels::MEMBER_OF) label;
//! the set's configuration blocks then replace the device's own.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::device_config::{
    HeartbeatConfiguration, LogCollection, MetricsConfiguration, Mount, OsInformation,
    StorageConfiguration,
};

/// Configuration applied to every member device.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "management.project-flotta.io",
    version = "v1alpha1",
    kind = "EdgeDeviceSet",
    plural = "edgedevicesets",
    singular = "edgedeviceset",
    namespaced,
    status = "EdgeDeviceSetStatus",
    derive = "PartialEq",
    doc = "Configuration shared by the edge devices labelled as members of the set."
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDeviceSetSpec {
    /// Heartbeat settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatConfiguration>,
    /// Log collection targets, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_collection: Option<LogCollection>,
    /// Metric collection settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfiguration>,
    /// Block devices to mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// The OS image member devices should run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_information: Option<OsInformation>,
    /// Where workload data is uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageConfiguration>,
}

/// Observed state of a device set; Flotta records none yet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct EdgeDeviceSetStatus {}
