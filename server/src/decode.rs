//! Decoders of untrusted request bodies: Flotta's JSON `message` on
//! `POST /data/{id}/out` (`message.rs`), and our postcard batch. Pure
//! functions, so they are property-tested and fuzzed (`server/fuzz`).

mod message;

use flotta_proto::batch::{BatchRequest, DecodeError as BatchDecodeError};
use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload, WindowSummary, WorkloadPhase};
use flotta_proto::record::RecordClass;
use serde_json::Value;

pub use message::{DataOut, decode_data_out, heartbeat_events};

use crate::store::{NewRecord, StatusUpdate};

/// Why a request body was refused (always answered with 400, except
/// [`BadBody::TooLarge`] which is 413).
#[derive(Debug, thiserror::Error)]
pub enum BadBody {
    /// Not JSON, or not the expected JSON shape.
    #[error("malformed JSON body: {0}")]
    Json(#[from] serde_json::Error),
    /// A message without a known directive.
    #[error("unsupported directive \"{0}\" (expected enrolment, registration or heartbeat)")]
    Directive(String),
    /// A message without content.
    #[error("message with directive \"{0}\" has no content")]
    NoContent(&'static str),
    /// A field of the message envelope has the wrong type or value.
    #[error("malformed message: {path}: {reason}")]
    Field {
        /// Where, e.g. `sent`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Content is not the schema the directive requires.
    #[error("{directive} content is malformed: {path}: {reason}")]
    Content {
        /// The directive.
        directive: &'static str,
        /// Where, e.g. `content.workloads[0].last_data_upload`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A field holds a value outside its allowed set.
    #[error("{0}")]
    Value(String),
    /// The batch body does not decode.
    #[error(transparent)]
    Batch(#[from] BatchDecodeError),
    /// A record of the batch is unusable.
    #[error("record seq {seq}: {reason}")]
    Record {
        /// Its sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The body exceeds the configured limit.
    #[error("request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// A `Content-Encoding` we do not speak (415).
    #[error("unsupported content encoding \"{0}\" (identity or deflate)")]
    Encoding(String),
    /// A `deflate` body that does not inflate.
    #[error("{0}")]
    Compressed(String),
}

/// The longest upload interval presence counts (a week): a device that
/// says more (a misconfigured agent) is taken at this, so that it still
/// reads offline within `offline_after_missed_heartbeats` weeks of silence.
pub const MAX_UPLOAD_INTERVAL_SECONDS: u32 = 7 * 86_400;

/// A batch decoded and checked, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    /// The batch format the request came in (the answer is encoded in it).
    pub format: u8,
    /// Format 2: the epoch of the frame context the device holds.
    pub frame_epoch: Option<u32>,
    /// Format 3: the device's upload interval (its next window opens
    /// within it unless it is offline), at most
    /// [`MAX_UPLOAD_INTERVAL_SECONDS`].
    pub upload_interval_seconds: Option<u32>,
    /// Configuration version the device applies.
    pub config_version: String,
    /// Records to store.
    pub records: Vec<NewRecord>,
    /// Status update from the batch's newest heartbeat, if any.
    pub status: Option<StatusUpdate>,
}

/// Largest sequence number or timestamp the store accepts.
const MAX_STORED: u64 = i64::MAX as u64;

/// The heartbeat as the JSON the store keeps, in Flotta's words: `status`
/// `up`/`degraded`, and `workloads` as Flotta's `workload-status`
/// (`{name, status}`, status one of `deploying`, `running`, `crashed`,
/// `stopped`), as a Flotta device worker sends them.
pub fn heartbeat_json(hb: &Heartbeat) -> Value {
    let mut v = serde_json::to_value(hb).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("status".into(), Value::from(status_word(hb.status)));
        let workloads = hb
            .workloads
            .iter()
            .map(|w| serde_json::json!({"name": w.name, "status": phase_word(w.phase)}))
            .collect();
        obj.insert("workloads".into(), Value::Array(workloads));
    }
    v
}

/// A workload phase as Flotta's `workload-status.status` enum.
pub fn phase_word(p: WorkloadPhase) -> &'static str {
    match p {
        WorkloadPhase::Deploying => "deploying",
        WorkloadPhase::Running => "running",
        WorkloadPhase::Crashed => "crashed",
        WorkloadPhase::Stopped => "stopped",
    }
}

/// The record class as a lower-case word (`heartbeat`, `log`, `event`), for
/// messages and metric labels.
pub fn class_word(class: RecordClass) -> &'static str {
    match class {
        RecordClass::Heartbeat => "heartbeat",
        RecordClass::Log => "log",
        RecordClass::Event => "event",
    }
}

fn status_word(s: DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::Up => "up",
        DeviceStatus::Degraded => "degraded",
    }
}

/// Decode a batch body sent with `content_encoding` (absent, `identity` or
/// `deflate`), never inflating more than `limit` bytes; then [`decode_batch`].
pub fn decode_encoded_batch(
    body: &[u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<DecodedBatch, BadBody> {
    use flotta_proto::compress::{DEFLATE, InflateError, inflate};
    match content_encoding.map(str::trim) {
        None | Some("") | Some("identity") => decode_batch(body),
        Some(e) if e.eq_ignore_ascii_case(DEFLATE) => match inflate(body, limit) {
            Ok(plain) => decode_batch(&plain),
            Err(InflateError::TooLarge { limit }) => Err(BadBody::TooLarge(limit)),
            Err(e @ InflateError::Corrupt(_)) => Err(BadBody::Compressed(e.to_string())),
        },
        Some(other) => Err(BadBody::Encoding(other.to_owned())),
    }
}

/// Decode and check a batch body: the envelope (format, order, size), then
/// every record's payload, which must decode and match the record's class.
pub fn decode_batch(body: &[u8]) -> Result<DecodedBatch, BadBody> {
    let req = BatchRequest::decode(body)?;
    let mut records = Vec::with_capacity(req.records.len());
    let mut status = None;
    for r in req.records {
        let (record, update) = check_record(r.seq, r.at_ms, r.class, r.payload)?;
        // Records ascend by seq, so the last heartbeat is the newest.
        if update.is_some() {
            status = update;
        }
        records.push(record);
    }
    Ok(DecodedBatch {
        format: req.format,
        frame_epoch: req.frame_epoch,
        upload_interval_seconds: req
            .upload_interval_seconds
            .map(|s| s.min(MAX_UPLOAD_INTERVAL_SECONDS)),
        config_version: req.config_version,
        records,
        status,
    })
}

/// Check one record as the batch route does, whatever carried it (a batch,
/// a sealed frame, fragments reassembled): `seq` and `at_ms` fit the store,
/// the payload decodes and is of the record's class. Returns the record and,
/// for a heartbeat (or a window summary), the status update it makes.
pub fn check_record(
    seq: u64,
    at_ms: u64,
    class: RecordClass,
    payload: Vec<u8>,
) -> Result<(NewRecord, Option<StatusUpdate>), BadBody> {
    let bad = |reason: String| BadBody::Record { seq, reason };
    if seq > MAX_STORED || at_ms > MAX_STORED {
        return Err(bad("seq and at_ms must not exceed 2^63-1".into()));
    }
    let decoded = Payload::decode(&payload).map_err(|e| bad(format!("payload: {e}")))?;
    if decoded.class() != class {
        return Err(bad(format!(
            "payload is a {} but the record says {}",
            class_word(decoded.class()),
            class_word(class)
        )));
    }
    let status = match &decoded {
        Payload::Heartbeat(hb) | Payload::Summary(WindowSummary { last: hb, .. }) => {
            Some(StatusUpdate {
                status: status_word(hb.status).into(),
                heartbeat: heartbeat_json(hb),
                hardware: None,
                seq: Some(seq),
            })
        }
        _ => None,
    };
    Ok((
        NewRecord {
            seq,
            at_ms,
            class,
            payload,
        },
        status,
    ))
}

#[cfg(test)]
mod tests;
