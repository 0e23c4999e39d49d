//! Device configuration blocks shared by [`EdgeDevice`](crate::EdgeDevice) and
//! [`EdgeDeviceSet`](crate::EdgeDeviceSet) specs: heartbeat, metrics, log
//! collection, data storage, OS image and mounts.
//!
//! A device that is a member of a set takes these blocks from the set instead of
//! from its own spec.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::NameRef;

/// How often the device reports in, and with how much hardware detail.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatConfiguration {
    /// What hardware information to include in heartbeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware_profile: Option<HardwareProfileConfiguration>,
    /// Seconds between two heartbeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub period_seconds: Option<i64>,
}

/// Hardware detail carried by heartbeats.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HardwareProfileConfiguration {
    /// Whether heartbeats carry hardware information at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<bool>,
    /// `full` for the whole profile every time, `delta` for changes only.
    /// Flotta's schema leaves this a free string, so it is one here too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// [`HardwareProfileConfiguration::scope`] value: send the full profile.
pub const HARDWARE_PROFILE_SCOPE_FULL: &str = "full";
/// [`HardwareProfileConfiguration::scope`] value: send only what changed.
pub const HARDWARE_PROFILE_SCOPE_DELTA: &str = "delta";

/// Metric collection on the device and forwarding off it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsConfiguration {
    /// Metrics about the data-transfer component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_transfer: Option<ComponentMetricsConfiguration>,
    /// Where the device forwards metrics (a Prometheus remote-write receiver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_configuration: Option<MetricsReceiverConfiguration>,
    /// How much collected metric data the device keeps on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<MetricsRetention>,
    /// Metrics about the device's operating system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<ComponentMetricsConfiguration>,
}

/// Scrape settings for one built-in metrics source on the device.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentMetricsConfiguration {
    /// ConfigMap listing the metric names to keep; all are kept when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_list: Option<NameRef>,
    /// `true` switches this source off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Seconds between two scrapes.
    #[serde(default = "default_metrics_interval_seconds")]
    #[schemars(range(min = 0))]
    pub interval: i32,
}

impl Default for ComponentMetricsConfiguration {
    fn default() -> Self {
        Self {
            allow_list: None,
            disabled: None,
            interval: default_metrics_interval_seconds(),
        }
    }
}

/// Scrape interval the API server fills in when a manifest leaves it out.
pub const DEFAULT_METRICS_INTERVAL_SECONDS: i32 = 60;

pub(crate) fn default_metrics_interval_seconds() -> i32 {
    DEFAULT_METRICS_INTERVAL_SECONDS
}

/// A remote-write endpoint the device pushes metrics to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsReceiverConfiguration {
    /// Secret holding the CA bundle that verifies the receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_secret_name: Option<String>,
    /// Largest number of samples sent in one request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_num_samples: Option<i64>,
    /// Timeout of one request, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// The receiver's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Limits on metric data kept on the device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsRetention {
    /// Oldest data kept, in hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_hours: Option<i32>,
    /// Disk space used at most, in MiB.
    #[serde(rename = "maxMiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_mib: Option<i32>,
}

/// Log collection targets, keyed by the name workloads use in their
/// `spec.logCollection`.
pub type LogCollection = BTreeMap<String, LogCollectionConfig>;

/// One log collection target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogCollectionConfig {
    /// Buffer size, in kilobytes, for logs waiting to be sent.
    #[serde(default = "default_log_buffer_size")]
    #[schemars(range(min = 1))]
    pub buffer_size: i32,
    /// Which transport to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LogCollectionKind>,
    /// ConfigMap with the syslog server's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog_config: Option<NameRef>,
}

/// Buffer size the API server fills in when a manifest leaves it out.
pub const DEFAULT_LOG_BUFFER_SIZE: i32 = 12;

fn default_log_buffer_size() -> i32 {
    DEFAULT_LOG_BUFFER_SIZE
}

/// Transport of a log collection target; Flotta knows only syslog.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogCollectionKind {
    /// Forward to a syslog server.
    Syslog,
}

/// Where workload data is uploaded.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct StorageConfiguration {
    /// An S3-compatible bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3StorageConfiguration>,
}

/// An S3-compatible bucket, given directly or through an ObjectBucketClaim.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3StorageConfiguration {
    /// ConfigMap with the bucket's endpoint and name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    /// Create an ObjectBucketClaim when neither ConfigMap nor Secret is given.
    #[serde(rename = "createOBC", skip_serializing_if = "Option::is_none")]
    pub create_obc: Option<bool>,
    /// Secret with the bucket's credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// The OS image (an ostree commit) the device should run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OsInformation {
    /// Upgrade to `commitID` without asking.
    #[serde(
        rename = "automaticallyUpgrade",
        skip_serializing_if = "Option::is_none"
    )]
    pub automatically_upgrade: Option<bool>,
    /// The wanted commit.
    #[serde(rename = "commitID", skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
    /// Base URL of the server hosting the commits.
    #[serde(rename = "hostedObjectsURL", skip_serializing_if = "Option::is_none")]
    pub hosted_objects_url: Option<String>,
}

/// A block device mounted on the device (wanted in a spec, found in a status).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Mount {
    /// Device path, e.g. `/dev/sdb1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Mount point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// Mount options, e.g. `rw,nosuid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    /// Filesystem type, e.g. `ext4`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
}
