//! Flotta's JSON `message` on `POST /data/{id}/out`: the envelope, then the
//! content its `directive` names. Every field the server interprets is
//! type-checked; a wrong one is refused with its path (`sent`,
//! `content.workloads`, `content.events[2].type`, ...).

use flotta_proto::payload::{Event, Level, Payload};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::BadBody;
use crate::models::{
    EnrolmentInfo, EventType, HeartbeatInfo, Message, RegistrationInfo, date_time_ms, directive,
};
use crate::store::JsonEvent;

/// What `POST /data/{id}/out` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum DataOut {
    /// Enrol the device.
    Enrolment(EnrolmentInfo),
    /// Register (or renew) the device certificate.
    Registration(RegistrationInfo),
    /// Report status; the raw heartbeat JSON is kept for the store.
    Heartbeat(HeartbeatInfo, Value),
}

fn content<T: DeserializeOwned>(directive: &'static str, v: &Value) -> Result<T, BadBody> {
    serde_path_to_error::deserialize(v).map_err(|e| BadBody::Content {
        directive,
        path: field_path("content", e.path()),
        reason: e.into_inner().to_string(),
    })
}

/// `content.x.y` from a path inside `content` (`.` is its root).
fn field_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    match path.to_string().as_str() {
        "." => prefix.to_owned(),
        p if prefix.is_empty() => p.to_owned(),
        p if p.starts_with('[') => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    }
}

/// Decode a `POST /data/{id}/out` body.
pub fn decode_data_out(body: &[u8]) -> Result<(Message, DataOut), BadBody> {
    let value: Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(BadBody::Value(
            "the body must be a JSON object (a Flotta message)".into(),
        ));
    }
    let mut msg: Message =
        serde_path_to_error::deserialize(&value).map_err(|e| BadBody::Field {
            path: field_path("", e.path()),
            reason: e.into_inner().to_string(),
        })?;
    let dir = msg.directive.clone().unwrap_or_default();
    let name = match dir.as_str() {
        directive::ENROLMENT => directive::ENROLMENT,
        directive::REGISTRATION => directive::REGISTRATION,
        directive::HEARTBEAT => directive::HEARTBEAT,
        _ => return Err(BadBody::Directive(dir)),
    };
    let raw = msg
        .content
        .take()
        .filter(|v| !v.is_null())
        .ok_or(BadBody::NoContent(name))?;
    let out = match name {
        directive::ENROLMENT => DataOut::Enrolment(content(name, &raw)?),
        directive::REGISTRATION => DataOut::Registration(content(name, &raw)?),
        _ => {
            let hb: HeartbeatInfo = content(name, &raw)?;
            match hb.status.as_deref() {
                None | Some("up" | "degraded") => {}
                Some(other) => {
                    return Err(BadBody::Content {
                        directive: name,
                        path: "content.status".into(),
                        reason: format!("\"{other}\" is neither \"up\" nor \"degraded\""),
                    });
                }
            }
            DataOut::Heartbeat(hb, raw)
        }
    };
    Ok((msg, out))
}

/// The events of a Flotta heartbeat as the event records our batch route
/// stores (`Payload::Event`: `info` → `Info`, `warn` → `Warn`, no type →
/// `Info`), timed by the message's `sent` time, or `received_ms` when it has
/// none.
///
/// Flotta's events carry no sequence number, so the store identifies one by
/// (device, `at_ms`, its position in the heartbeat, its payload): a retried
/// heartbeat (same `sent`, same events) stores nothing twice, while two
/// different events never collide. A message without `sent` is timed at
/// reception, so its retries cannot be recognised (Flotta's device worker
/// always sets `sent`).
pub fn heartbeat_events(
    info: &HeartbeatInfo,
    sent: Option<&str>,
    received_ms: u64,
) -> Vec<JsonEvent> {
    let at_ms = sent.and_then(date_time_ms).unwrap_or(received_ms);
    info.events
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, e)| JsonEvent {
            at_ms,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            payload: Payload::Event(Event {
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
                level: match e.kind {
                    Some(EventType::Warn) => Level::Warn,
                    Some(EventType::Info) | None => Level::Info,
                },
            })
            .encode(),
        })
        .collect()
}
