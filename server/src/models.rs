//! Flotta's Edge API JSON models (the parts this server reads or writes),
//! field names as in Flotta's swagger. Unknown fields are ignored, as
//! Flotta's Go server does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `message`: the envelope of every Flotta data/control exchange.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `connection-status`, `command`, `event` or `data`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Id of the message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_to: Option<String>,
    /// Envelope version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// When it was sent (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// What the content is: `enrolment`, `registration`, `heartbeat`, `device`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directive: Option<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The payload; its schema depends on `directive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
}

/// `message-response`: what `POST /data/{id}/out` answers for registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageResponse {
    /// Id of the message answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Directive of the message answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directive: Option<String>,
    /// The answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `enrolment-info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentInfo {
    /// Device features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<EnrolmentFeatures>,
    /// Namespace to enrol into (server default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
}

/// `enrolment-info.features`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentFeatures {
    /// Model name.
    #[serde(rename = "modelName", default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// `hardware-info`, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Value>,
}

/// `registration-info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrationInfo {
    /// `hardware-info`, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Value>,
    /// PEM certificate signing request.
    pub certificate_request: String,
}

/// `registration-response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationResponse {
    /// The signed device certificate, PEM.
    pub certificate: String,
}

/// `heartbeat` (only the fields the server interprets; the whole JSON is stored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatInfo {
    /// `up` or `degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Agent version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `hardware-info`, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Value>,
}

/// Directive names used on `POST /data/{id}/out`.
pub mod directive {
    /// Enrolment request.
    pub const ENROLMENT: &str = "enrolment";
    /// Registration (first certificate, or renewal).
    pub const REGISTRATION: &str = "registration";
    /// Status report.
    pub const HEARTBEAT: &str = "heartbeat";
    /// The directive of configuration messages sent to devices.
    pub const DEVICE: &str = "device";
}
