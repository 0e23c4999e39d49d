//! [`EdgeDeviceSignedRequest`]: a device's request to enrol, waiting for an
//! operator to approve or decline it.
//!
//! The object is named after the device id; approving it (setting
//! `spec.approved`) lets the controller create the EdgeDevice in
//! `spec.targetNamespace`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hardware::Hardware;

/// What the device asked for, and whether it got it.
// Clippy reads the repeated `type_ = "string"` of the printer columns as
// duplicated attributes; each belongs to a different column.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "management.project-flotta.io",
    version = "v1alpha1",
    kind = "EdgeDeviceSignedRequest",
    plural = "edgedevicesignedrequest",
    singular = "edgedevicesignedrequest",
    shortname = "edsr",
    namespaced,
    status = "EdgeDeviceSignedRequestStatus",
    derive = "PartialEq",
    doc = "An enrolment request from an edge device, approved or declined by an operator.",
    printcolumn(
        name = "deviceid",
        type_ = "string",
        json_path = ".metadata.name",
        description = "DeviceID"
    ),
    printcolumn(
        name = "targetNamespace",
        type_ = "string",
        json_path = ".spec.targetNamespace",
        description = "Target Namespace to land"
    ),
    printcolumn(
        name = "Approved",
        type_ = "string",
        json_path = ".spec.approved",
        description = "Approved"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "Status"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDeviceSignedRequestSpec {
    /// Set to `true` to let the device register.
    #[serde(default)]
    pub approved: bool,
    /// What the device reported about itself when it asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    /// Namespace the EdgeDevice is created in.
    pub target_namespace: String,
    /// EdgeDeviceSet the new device joins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_set: Option<String>,
}

/// Self-description of an enrolling device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// The hardware profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Hardware>,
    /// Board model from `/sys/firmware/devicetree/base/model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
}

/// Progress of the request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EdgeDeviceSignedRequestStatus {
    /// Conditions, latest state last.
    pub conditions: Vec<SignedRequestCondition>,
}

/// One condition of an enrolment request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedRequestCondition {
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Human-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Which decision the condition is about.
    ///
    /// Required, but the API server fills in `pending` when it is left out.
    #[serde(rename = "type")]
    #[schemars(extend("default" = "pending"))]
    pub type_: SignedRequestConditionType,
}

/// Decision an enrolment request condition is about.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignedRequestConditionType {
    /// The operator refused the device.
    Declined,
    /// The operator accepted the device.
    Approved,
    /// No decision yet.
    #[default]
    Pending,
}
