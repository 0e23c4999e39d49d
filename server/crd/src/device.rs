//! [`EdgeDevice`]: one registered edge device, its configuration and what it
//! last reported.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::device_config::{
    HeartbeatConfiguration, LogCollection, MetricsConfiguration, Mount, OsInformation,
    StorageConfiguration,
};
use crate::hardware::Hardware;
use crate::playbook::PlaybookExecutionStatus;

/// Desired state of an edge device.
///
/// When the device carries the `flotta/member-of` label, the configuration
/// blocks come from that EdgeDeviceSet instead of from here.
///
/// `kubectl get edgedevices` shows presence, phase and workloads (printer
/// columns; Flotta's CRD has none).
// Clippy reads the repeated `type_ = "string"` of the printer columns as
// duplicated attributes; each belongs to a different column.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "management.project-flotta.io",
    version = "v1alpha1",
    kind = "EdgeDevice",
    plural = "edgedevices",
    singular = "edgedevice",
    namespaced,
    status = "EdgeDeviceStatus",
    derive = "PartialEq",
    doc = "An edge device registered with Flotta.",
    printcolumn(
        name = "Presence",
        type_ = "string",
        json_path = ".status.presence",
        description = "online, offline (heartbeats missed) or unknown"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "What the device last reported: up or degraded"
    ),
    printcolumn(
        name = "Workloads",
        type_ = "string",
        json_path = ".status.workloads[*].name",
        description = "Workloads deployed on the device"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDeviceSpec {
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
    /// The OS image the device should run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_information: Option<OsInformation>,
    /// When the device asked to register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_time: Option<Time>,
    /// Where workload data is uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageConfiguration>,
}

/// Observed state of an edge device, as last reported by its agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDeviceStatus {
    /// Playbook runs on this device.
    #[serde(rename = "PlaybookExec", skip_serializing_if = "Option::is_none")]
    pub playbook_exec: Option<Vec<PlaybookExec>>,
    /// Name of the ObjectBucketClaim created for the device's data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_obc: Option<String>,
    /// The hardware profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Hardware>,
    /// When the server last heard from the device (a heartbeat, a batch).
    /// Not in Flotta's schema: flotta's server writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_time: Option<Time>,
    /// `metadata.resourceVersion` of the device the agent last synced with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_synced_resource_version: Option<String>,
    /// The link the device last used and its sealed-frame context and
    /// counters. Not in Flotta's schema: flotta's server writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkStatus>,
    /// Device phase, e.g. `up`, `down`, `degraded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `online`, `offline` (heartbeats missed) or `unknown` (never heard
    /// from). Not in Flotta's schema: flotta's server writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<String>,
    /// State of OS image upgrades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_information: Option<UpgradeInformation>,
    /// The upload interval the device's agent reported (its heartbeats
    /// arrive together once per window; presence counts it). Not in
    /// Flotta's schema: flotta's server shows it on reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_interval_seconds: Option<u32>,
    /// Workloads deployed on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<WorkloadStatus>>,
}

/// How a device reaches the server: the link it last used (`tls`: the
/// mTLS API; `udp`: sealed frames) and, when it has one, its sealed-frame
/// context (key id, epoch) and counters. A flotta addition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    /// `tls` or `udp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_link: Option<String>,
    /// Key id of the device's frame context, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_key_id: Option<String>,
    /// The context's newest epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_epoch: Option<i64>,
    /// The highest uplink frame counter accepted under that epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink_counter: Option<i64>,
    /// Downlink frame counters of that epoch reserved so far (every answer
    /// sealed under it had a lower one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downlink_counter: Option<i64>,
    /// Frames stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_stored: Option<i64>,
    /// Frames received again and acknowledged again (not stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_duplicate: Option<i64>,
}

/// A playbook run on the device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PlaybookExec {
    /// The run's conditions.
    #[serde(
        rename = "PlaybookExecutionStatus",
        skip_serializing_if = "Option::is_none"
    )]
    pub playbook_execution_status: Option<PlaybookExecutionStatus>,
    /// Name of the PlaybookExecution.
    pub name: String,
}

/// OS image upgrade state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct UpgradeInformation {
    /// The ostree commit the device runs.
    #[serde(rename = "currentCommitID")]
    pub current_commit_id: String,
    /// Outcome of the last upgrade.
    #[serde(rename = "lastUpgradeStatus", skip_serializing_if = "Option::is_none")]
    pub last_upgrade_status: Option<String>,
    /// When the last upgrade happened (free-form text, not a timestamp).
    #[serde(rename = "lastUpgradeTime", skip_serializing_if = "Option::is_none")]
    pub last_upgrade_time: Option<String>,
}

/// A workload deployed on the device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// When the workload's data was last uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_data_upload: Option<Time>,
    /// When `phase` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Name of the EdgeWorkload.
    pub name: String,
    /// Workload phase, e.g. `Running`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}
