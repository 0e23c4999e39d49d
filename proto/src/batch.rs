//! The compact batch route: one round trip uploads queued records and syncs
//! configuration.
//!
//! `POST {API_BASE}/batch/{device_id}` with body `postcard(BatchRequest)` and
//! content type [`BATCH_CONTENT_TYPE`]; the answer is `postcard(BatchResponse)`.
//!
//! Invariants the server keeps (and the agent relies on):
//! - records are deduplicated by `(device_id, seq)`: sending a batch twice stores it once;
//! - `acked_through` is only set once every record of the batch is committed;
//! - `config` is present only when the server's configuration version differs
//!   from `BatchRequest::config_version`.

use serde::{Deserialize, Serialize};

use crate::record::RecordClass;

/// Base path of Flotta's Edge API (and of our batch route).
pub const API_BASE: &str = "/api/flotta-management/v1";

/// Content type of both batch request and response bodies.
pub const BATCH_CONTENT_TYPE: &str = "application/x-flotta-batch+postcard";

/// Version of the batch encoding this build sends; bumped on any
/// incompatible change. The server also accepts (and answers in) every
/// earlier version down to [`BATCH_FORMAT_MIN`].
///
/// - 1: records and configuration.
/// - 2: adds sealed-frame key sync: [`BatchRequest::frame_epoch`] and
///   [`BatchResponse::frame_keys`].
/// - 3: adds [`BatchRequest::upload_interval_seconds`] (the server judges
///   presence by it); the response is format 2's.
pub const BATCH_FORMAT_VERSION: u8 = 3;

/// The oldest batch format the server still speaks.
pub const BATCH_FORMAT_MIN: u8 = 1;

/// Largest batch body the server accepts, and the agent ever builds.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Path of the batch route for one device.
pub fn batch_path(device_id: &str) -> String {
    format!("{API_BASE}/batch/{device_id}")
}

/// One queued record as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord {
    /// Per-device sequence number; strictly increasing, never reused.
    pub seq: u64,
    /// When the device produced it, milliseconds since the Unix epoch (device clock).
    pub at_ms: u64,
    /// Heartbeat, log or event.
    pub class: RecordClass,
    /// postcard-encoded [`crate::payload::Payload`].
    pub payload: Vec<u8>,
}

/// What the agent uploads in one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// Must equal [`BATCH_FORMAT_VERSION`].
    pub format: u8,
    /// Version of the configuration the device currently applies (empty: none yet).
    pub config_version: String,
    /// Records in ascending `seq` order.
    pub records: Vec<WireRecord>,
    /// Format 2: the epoch of the sealed-frame context the device holds
    /// (`None`: it holds none). The server answers
    /// [`BatchResponse::frame_keys`] when its current epoch differs.
    pub frame_epoch: Option<u32>,
    /// Format 3: the device's next upload window opens within this many
    /// seconds unless it is offline (`None`: not said; formats 1 and 2).
    /// The server counts it when it judges presence: a device that uploads
    /// hourly is not offline three heartbeat periods after a window.
    pub upload_interval_seconds: Option<u32>,
}

/// Format 2 of [`BatchRequest`] (no upload interval).
#[derive(Deserialize, Serialize)]
struct BatchRequestV2 {
    format: u8,
    config_version: String,
    records: Vec<WireRecord>,
    frame_epoch: Option<u32>,
}

/// Format 1 of [`BatchRequest`] (no frame key sync).
#[derive(Deserialize, Serialize)]
struct BatchRequestV1 {
    format: u8,
    config_version: String,
    records: Vec<WireRecord>,
}

/// Format 1 of [`BatchResponse`].
#[derive(Deserialize, Serialize)]
struct BatchResponseV1 {
    acked_through: Option<u64>,
    config: Option<ConfigUpdate>,
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Highest sequence number the server has durably stored for this device
    /// (`None` if it has stored nothing yet). The agent may delete everything up to it.
    pub acked_through: Option<u64>,
    /// New desired configuration, present only when it changed.
    pub config: Option<ConfigUpdate>,
    /// Format 2: the device's current sealed-frame key material, present
    /// only when the request's `frame_epoch` differs from it (first
    /// delivery and every rotation). Travels only inside mTLS.
    pub frame_keys: Option<crate::frame_keys::FrameKeys>,
}

/// Desired device configuration, as Flotta's `device-configuration-message` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUpdate {
    /// Opaque version string; the agent echoes it in `BatchRequest::config_version`.
    pub version: String,
    /// UTF-8 JSON of Flotta's `device-configuration-message`.
    pub message_json: String,
}

/// Error decoding a batch body.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid postcard encoding of the expected type.
    #[error("malformed batch body: {0}")]
    Malformed(#[from] postcard::Error),
    /// Valid encoding, unsupported format version.
    #[error("unsupported batch format {found} (this build speaks {BATCH_FORMAT_VERSION})")]
    UnsupportedFormat {
        /// The version the peer sent.
        found: u8,
    },
    /// Records are not in strictly ascending sequence order.
    #[error("records out of order at index {index}")]
    OutOfOrder {
        /// Index of the first record not greater than its predecessor.
        index: usize,
    },
    /// The body exceeds [`MAX_BATCH_BYTES`].
    #[error("batch body of {0} bytes exceeds the limit of {MAX_BATCH_BYTES}")]
    TooLarge(usize),
}

impl BatchRequest {
    /// Encode for the wire.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decode and validate an untrusted request body.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        // postcard writes a u8 as one byte: the format comes first.
        let req: BatchRequest = match bytes.first() {
            Some(1) => {
                let v1: BatchRequestV1 = postcard::from_bytes(bytes)?;
                BatchRequest {
                    format: v1.format,
                    config_version: v1.config_version,
                    records: v1.records,
                    frame_epoch: None,
                    upload_interval_seconds: None,
                }
            }
            Some(2) => {
                let v2: BatchRequestV2 = postcard::from_bytes(bytes)?;
                BatchRequest {
                    format: v2.format,
                    config_version: v2.config_version,
                    records: v2.records,
                    frame_epoch: v2.frame_epoch,
                    upload_interval_seconds: None,
                }
            }
            Some(3) => postcard::from_bytes(bytes)?,
            Some(&found) => return Err(DecodeError::UnsupportedFormat { found }),
            None => return Err(postcard::Error::DeserializeUnexpectedEnd.into()),
        };
        if let Some(index) = req
            .records
            .windows(2)
            .position(|w| w[1].seq <= w[0].seq)
            .map(|i| i + 1)
        {
            return Err(DecodeError::OutOfOrder { index });
        }
        Ok(req)
    }
}

impl BatchResponse {
    /// Encode for the wire in this build's format.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Encode in the format the request came in (an older agent cannot
    /// read fields it does not know; format 1 drops `frame_keys`; formats 2
    /// and 3 answer alike).
    pub fn encode_for(&self, format: u8) -> Vec<u8> {
        if format >= 2 {
            return self.encode();
        }
        let v1 = BatchResponseV1 {
            acked_through: self.acked_through,
            config: self.config.clone(),
        };
        postcard::to_allocvec(&v1).unwrap_or_default()
    }

    /// Decode an untrusted response body of this build's format.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let resp: Self = postcard::from_bytes(bytes)?;
        if let Some(keys) = &resp.frame_keys {
            keys.validate()
                .map_err(|_| DecodeError::Malformed(postcard::Error::DeserializeBadEncoding))?;
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn class() -> impl Strategy<Value = RecordClass> {
        prop::sample::select(RecordClass::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn request_roundtrips(
            seqs in prop::collection::btree_set(any::<u64>(), 0..20),
            cls in class(),
            payload in prop::collection::vec(any::<u8>(), 0..64),
            version in ".{0,12}",
            epoch in any::<Option<u32>>(),
            interval in any::<Option<u32>>(),
        ) {
            let req = BatchRequest {
                format: BATCH_FORMAT_VERSION,
                config_version: version,
                records: seqs.into_iter().map(|seq| WireRecord { seq, at_ms: seq / 3, class: cls, payload: payload.clone() }).collect(),
                frame_epoch: epoch,
                upload_interval_seconds: interval,
            };
            prop_assert_eq!(BatchRequest::decode(&req.encode()).unwrap(), req);
        }

        #[test]
        fn format_2_requests_decode_without_an_interval(
            seqs in prop::collection::btree_set(any::<u64>(), 0..20),
            cls in class(),
            version in ".{0,12}",
            epoch in any::<Option<u32>>(),
        ) {
            let records: Vec<WireRecord> = seqs.into_iter().map(|seq| WireRecord { seq, at_ms: seq, class: cls, payload: vec![7] }).collect();
            let v2 = BatchRequestV2 { format: 2, config_version: version.clone(), records: records.clone(), frame_epoch: epoch };
            let req = BatchRequest::decode(&postcard::to_allocvec(&v2).unwrap()).unwrap();
            prop_assert_eq!(req, BatchRequest { format: 2, config_version: version, records, frame_epoch: epoch, upload_interval_seconds: None });
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = BatchRequest::decode(&bytes);
            let _ = BatchResponse::decode(&bytes);
        }
    }

    #[test]
    fn format_1_requests_still_decode_and_get_format_1_answers() {
        let v1 = BatchRequestV1 {
            format: 1,
            config_version: "v3".into(),
            records: vec![WireRecord {
                seq: 4,
                at_ms: 5,
                class: RecordClass::Event,
                payload: vec![1],
            }],
        };
        let req = BatchRequest::decode(&postcard::to_allocvec(&v1).unwrap()).unwrap();
        assert_eq!(
            (
                req.format,
                req.frame_epoch,
                req.upload_interval_seconds,
                req.records.len()
            ),
            (1, None, None, 1)
        );
        let resp = BatchResponse {
            acked_through: Some(4),
            config: None,
            frame_keys: Some(crate::frame_keys::FrameKeys {
                key_id: [1, 2, 3, 4],
                epoch: 1,
                master_secret: [9; 32],
                master_salt: vec![0; 8],
            }),
        };
        let old: BatchResponseV1 = postcard::from_bytes(&resp.encode_for(1)).unwrap();
        assert_eq!((old.acked_through, old.config), (Some(4), None));
        assert_eq!(
            resp.encode_for(1).len(),
            3,
            "no key material in a format-1 answer"
        );
        assert_eq!(BatchResponse::decode(&resp.encode_for(2)).unwrap(), resp);
        assert_eq!(BatchResponse::decode(&resp.encode_for(3)).unwrap(), resp);
    }

    #[test]
    fn out_of_order_is_rejected() {
        let rec = |seq| WireRecord {
            seq,
            at_ms: 0,
            class: RecordClass::Log,
            payload: vec![],
        };
        let req = BatchRequest {
            format: BATCH_FORMAT_VERSION,
            config_version: String::new(),
            records: vec![rec(1), rec(3), rec(3)],
            frame_epoch: None,
            upload_interval_seconds: None,
        };
        assert!(matches!(
            BatchRequest::decode(&req.encode()),
            Err(DecodeError::OutOfOrder { index: 2 })
        ));
    }

    #[test]
    fn wrong_format_is_rejected() {
        let req = BatchRequest {
            format: 9,
            config_version: String::new(),
            records: vec![],
            frame_epoch: None,
            upload_interval_seconds: None,
        };
        assert!(matches!(
            BatchRequest::decode(&req.encode()),
            Err(DecodeError::UnsupportedFormat { found: 9 })
        ));
    }
}
