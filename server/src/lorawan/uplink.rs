//! One LoRaWAN uplink as a network server hands it over, whichever network
//! server it came from ([`super::chirpstack`], [`super::tts`]), and why a
//! body is not one. Decoding is pure and total (fuzzed:
//! `fuzz_targets/chirpstack_up.rs`, `fuzz_targets/tts_uplink.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::links::LinkAddress;

/// Largest FRMPayload LoRaWAN carries (242 bytes at the fastest rates).
pub const MAX_FRM_PAYLOAD_BYTES: usize = 242;

/// An uplink, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraUplink {
    /// The end device (kind `lorawan`).
    pub dev_eui: LinkAddress,
    /// FCntUp as the network reports it (0 when omitted).
    pub f_cnt: u32,
    /// FPort; `None` for an uplink without application payload (FPort 0
    /// or absent: MAC commands only).
    pub f_port: Option<u8>,
    /// FRMPayload, decrypted by the network server (our sealed frame).
    pub data: Vec<u8>,
    /// Data rate index (`None` when the network reports none we know).
    pub dr: Option<u8>,
    /// Best RSSI over the gateways that heard it, dBm.
    pub rssi: Option<f64>,
    /// Best SNR over the gateways that heard it, dB.
    pub snr: Option<f64>,
    /// When the network server received it (RFC 3339, as reported).
    pub received_at: Option<String>,
}

/// Why a body is not a usable uplink.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UplinkError {
    /// Not JSON of the expected shape.
    #[error("unparsable uplink: {0}")]
    Json(String),
    /// A field is missing or invalid.
    #[error("field {field}: {reason}")]
    Field {
        /// The field (JSON path).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl UplinkError {
    /// Never: the same body is refused again.
    pub fn is_retriable(&self) -> bool {
        false
    }

    pub(super) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        UplinkError::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// Standard base64 (with padding, as protobuf JSON and TTS write bytes),
/// at most [`MAX_FRM_PAYLOAD_BYTES`] decoded.
pub(super) fn payload(field: &'static str, b64: Option<&str>) -> Result<Vec<u8>, UplinkError> {
    let Some(b64) = b64 else {
        return Ok(Vec::new());
    };
    if b64.len() > MAX_FRM_PAYLOAD_BYTES.div_ceil(3) * 4 {
        return Err(UplinkError::field(
            field,
            format!("longer than {MAX_FRM_PAYLOAD_BYTES} bytes"),
        ));
    }
    STANDARD
        .decode(b64)
        .map_err(|e| UplinkError::field(field, format!("not base64: {e}")))
}

/// An FPort from its JSON number: 0 (or absent) is no application port,
/// 1..=223 application data, 224 the LoRaWAN test port, above that invalid.
pub(super) fn f_port(field: &'static str, v: Option<u32>) -> Result<Option<u8>, UplinkError> {
    match v.unwrap_or(0) {
        0 => Ok(None),
        p @ 1..=255 => Ok(u8::try_from(p).ok()),
        p => Err(UplinkError::field(field, format!("{p} is not an FPort"))),
    }
}

/// The best of the gateways' values (NaN and infinities ignored).
pub(super) fn best(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values
        .flatten()
        .filter(|v| v.is_finite())
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_ports_and_best_values() {
        assert_eq!(payload("data", Some("qg==")).unwrap(), vec![0xaa]);
        assert_eq!(payload("data", None).unwrap(), Vec::<u8>::new());
        assert!(payload("data", Some("qg=")).is_err());
        assert!(payload("data", Some(&"A".repeat(400))).is_err());
        assert_eq!(f_port("fPort", None).unwrap(), None);
        assert_eq!(f_port("fPort", Some(0)).unwrap(), None);
        assert_eq!(f_port("fPort", Some(7)).unwrap(), Some(7));
        assert!(f_port("fPort", Some(256)).is_err());
        assert_eq!(
            best([Some(-120.0), None, Some(-80.0), Some(f64::NAN)].into_iter()),
            Some(-80.0)
        );
        assert_eq!(best(std::iter::empty()), None);
    }
}
