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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date_time"
    )]
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
    /// The device's sealed-frame keys, when the server has frames on (an
    /// addition to Flotta's answer; Flotta's agents ignore it).
    #[serde(rename = "frameKeys", default, skip_serializing_if = "Option::is_none")]
    pub frame_keys: Option<flotta_proto::frame_keys::FrameKeys>,
}

/// `heartbeat`: the fields the server interprets, each type-checked (a
/// wrongly typed one is refused with its path); the whole JSON is stored.
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
    /// Workloads the device runs; `null` (Flotta's device worker running
    /// none) is the empty list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<WorkloadStatus>>,
    /// Events produced by the device since its previous heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventInfo>>,
}

/// `workload-status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadStatus {
    /// Workload name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its state as the device words it (Flotta's swagger lists `deploying`,
    /// `running`, `crashed`, `stopped`; its device worker sends podman's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When its data was last uploaded (RFC 3339).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date_time"
    )]
    pub last_data_upload: Option<String>,
}

/// `event-info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// One word naming the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `info` or `warn`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventType>,
}

/// `event-info.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// Informational.
    Info,
    /// Something to look at.
    Warn,
}

/// ms since the Unix epoch of an RFC 3339 date-time; `None` when it is not
/// one (or before 1970).
pub fn date_time_ms(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Deserialise an optional RFC 3339 date-time (swagger `format: date-time`),
/// refusing any other string.
fn date_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    match text {
        Some(t)
            if time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                .is_err() =>
        {
            Err(serde::de::Error::custom(format!(
                "\"{t}\" is not an RFC 3339 date-time (e.g. 2024-05-01T10:00:00Z)"
            )))
        }
        other => Ok(other),
    }
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
