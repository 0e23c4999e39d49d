//! A Rock7 MO webhook body, parsed: `HTTP_POST` (form-urlencoded) or
//! `HTTP_JSON`, with the fields `imei, serial, momsn, transmit_time,
//! iridium_latitude, iridium_longitude, iridium_cep, data` (hex) and `JWT`.
//!
//! Only the JWT's verified claims are used ([`MoMessage::from_claims`]):
//! the plain fields are what anybody may post, so they are ignored, even
//! when they contradict the claims (the claims win; documented in
//! server/README.md). Parsing is pure and total (fuzzed:
//! `fuzz_targets/rock7_mo.rs`).

use serde_json::{Map, Value};
use time::PrimitiveDateTime;

use crate::links::{InvalidAddress, LinkAddress};

/// Longest MO payload an Iridium 9603 sends.
pub const MAX_MO_BYTES: usize = 340;

/// Why a body or its claims are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoError {
    /// The body is neither a form nor a JSON object of strings.
    #[error("unparsable body: {0}")]
    Body(String),
    /// The body has no `JWT` field.
    #[error("no JWT in the body")]
    NoJwt,
    /// A claim is missing or invalid.
    #[error("claim {claim}: {reason}")]
    Claim {
        /// The claim.
        claim: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl MoError {
    /// Never: the same body is refused again.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// The encodings Rock7 delivers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `HTTP_POST`: `application/x-www-form-urlencoded`.
    Form,
    /// `HTTP_JSON`: a JSON object.
    Json,
}

impl BodyFormat {
    /// By content type: JSON when it says so, else (form or none) a form,
    /// unless the body is a JSON object without a content type.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> Self {
        let essence = content_type
            .and_then(|t| t.split(';').next())
            .map(str::trim);
        match essence {
            Some(t) if t.eq_ignore_ascii_case("application/json") => BodyFormat::Json,
            None if body.trim_ascii_start().first() == Some(&b'{') => BodyFormat::Json,
            _ => BodyFormat::Form,
        }
    }
}

/// The `JWT` field of a body.
///
/// # Errors
/// [`MoError::Body`] (unparsable), [`MoError::NoJwt`].
pub fn jwt_of(format: BodyFormat, body: &[u8]) -> Result<String, MoError> {
    let found = match format {
        BodyFormat::Form => serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map_err(|e| MoError::Body(e.to_string()))?
            .into_iter()
            .find(|(k, _)| k == "JWT")
            .map(|(_, v)| v),
        BodyFormat::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m.get("JWT").and_then(Value::as_str).map(str::to_owned),
            Ok(_) => return Err(MoError::Body("not a JSON object".into())),
            Err(e) => return Err(MoError::Body(e.to_string())),
        },
    };
    found.filter(|t| !t.trim().is_empty()).ok_or(MoError::NoJwt)
}

/// One MO message, from verified claims.
#[derive(Debug, Clone, PartialEq)]
pub struct MoMessage {
    /// The modem.
    pub imei: LinkAddress,
    /// Rock7's MO sequence number.
    pub momsn: u32,
    /// When Iridium received it (UTC, ms since the Unix epoch), if given.
    pub transmit_ms: Option<u64>,
    /// Iridium's position estimate.
    pub latitude: Option<f64>,
    /// Iridium's position estimate.
    pub longitude: Option<f64>,
    /// The estimate's radius, km.
    pub cep_km: Option<f64>,
    /// The payload: a sealed frame.
    pub data: Vec<u8>,
}

/// A claim as text: Rock7 sends strings; numbers are taken too.
fn text<'a>(
    claims: &'a Map<String, Value>,
    claim: &'static str,
) -> Option<std::borrow::Cow<'a, str>> {
    match claims.get(claim)? {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

fn required<'a>(
    claims: &'a Map<String, Value>,
    claim: &'static str,
) -> Result<std::borrow::Cow<'a, str>, MoError> {
    text(claims, claim).ok_or(MoError::Claim {
        claim,
        reason: "missing".into(),
    })
}

fn number(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<f64>, MoError> {
    let Some(t) = text(claims, claim).filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    match t.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(MoError::Claim {
            claim,
            reason: format!("not a number: \"{}\"", t.escape_debug()),
        }),
    }
}

impl MoMessage {
    /// The message the verified `claims` describe.
    ///
    /// # Errors
    /// [`MoError::Claim`]: `imei` not 15 digits, `momsn` not a number,
    /// `data` not hex or longer than 340 bytes, a coordinate not a number,
    /// `transmit_time` not `YY-MM-DD HH:MM:SS`.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, MoError> {
        let bad = |claim, reason: String| MoError::Claim { claim, reason };
        let imei = LinkAddress::imei(&required(claims, "imei")?)
            .map_err(|InvalidAddress(e)| bad("imei", e))?;
        let momsn = required(claims, "momsn")?
            .trim()
            .parse::<u32>()
            .map_err(|e| bad("momsn", e.to_string()))?;
        let hex = required(claims, "data")?;
        let data = decode_hex(hex.trim()).ok_or_else(|| bad("data", "not hex".into()))?;
        if data.len() > MAX_MO_BYTES {
            return Err(bad(
                "data",
                format!("{} bytes; an MO is at most {MAX_MO_BYTES}", data.len()),
            ));
        }
        let transmit_ms = match text(claims, "transmit_time").filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(t) => Some(
                transmit_ms(t.trim())
                    .ok_or_else(|| bad("transmit_time", format!("not YY-MM-DD HH:MM:SS: {t}")))?,
            ),
        };
        Ok(Self {
            imei,
            momsn,
            transmit_ms,
            latitude: number(claims, "iridium_latitude")?,
            longitude: number(claims, "iridium_longitude")?,
            cep_km: number(claims, "iridium_cep")?,
            data,
        })
    }
}

/// `21-10-31 10:41:50` (UTC; two-digit years are 20YY) in ms since the
/// Unix epoch.
pub fn transmit_ms(t: &str) -> Option<u64> {
    let format = time::format_description::parse_borrowed::<1>(
        "[year]-[month]-[day] [hour]:[minute]:[second]",
    )
    .ok()?;
    let at = PrimitiveDateTime::parse(&format!("20{t}"), &format)
        .ok()?
        .assume_utc();
    u64::try_from(at.unix_timestamp()).ok()?.checked_mul(1000)
}

/// Hex (either case, even length) to bytes.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            u8::try_from(d(p[0])? * 16 + d(p[1])?).ok()
        })
        .collect()
}

/// Bytes to lower-case hex (what Rock7's MT API takes).
pub fn encode_hex(bytes: &[u8]) -> String {
    flotta_proto::frame_keys::hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        match json!({
            "imei": "300234010753370", "serial": "206899", "momsn": "12",
            "transmit_time": "21-10-31 10:41:50", "iridium_latitude": "52.3867",
            "iridium_longitude": "-0.2938", "iridium_cep": "8.0", "data": "48656c6c6f",
            "iss": "Rock 7", "iat": 1_635_676_910
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_message_is_taken_from_claims() {
        let m = MoMessage::from_claims(&claims()).unwrap();
        assert_eq!(m.imei.address(), "300234010753370");
        assert_eq!(m.momsn, 12);
        assert_eq!(m.data, b"Hello");
        assert_eq!(m.latitude, Some(52.3867));
        assert_eq!(m.cep_km, Some(8.0));
        assert_eq!(m.transmit_ms, Some(1_635_676_910_000));
        for (claim, bad) in [
            ("imei", json!("12345")),
            ("momsn", json!("-1")),
            ("data", json!("abc")),
            ("data", json!("zz")),
            ("data", json!("00".repeat(341))),
            ("iridium_latitude", json!("north")),
            ("transmit_time", json!("yesterday")),
        ] {
            let mut c = claims();
            c.insert(claim.into(), bad);
            let err = MoMessage::from_claims(&c).unwrap_err();
            assert!(err.to_string().contains(claim), "{err}");
        }
        let mut c = claims();
        c.remove("data");
        assert!(MoMessage::from_claims(&c).is_err());
    }

    #[test]
    fn the_jwt_field_is_found_in_forms_and_json() {
        assert_eq!(
            jwt_of(BodyFormat::Form, b"imei=1&JWT=a.b.c&data=00").unwrap(),
            "a.b.c"
        );
        assert_eq!(
            jwt_of(BodyFormat::Json, br#"{"JWT": "a.b.c"}"#).unwrap(),
            "a.b.c"
        );
        assert_eq!(jwt_of(BodyFormat::Form, b"imei=1"), Err(MoError::NoJwt));
        assert_eq!(
            jwt_of(BodyFormat::Json, br#"{"JWT": ""}"#),
            Err(MoError::NoJwt)
        );
        assert!(matches!(
            jwt_of(BodyFormat::Json, b"[]"),
            Err(MoError::Body(_))
        ));
        assert_eq!(BodyFormat::detect(None, b" {"), BodyFormat::Json);
        assert_eq!(BodyFormat::detect(None, b"a=1"), BodyFormat::Form);
        assert_eq!(
            BodyFormat::detect(Some("Application/JSON; charset=utf-8"), b"a=1"),
            BodyFormat::Json
        );
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert_eq!(decode_hex(&encode_hex(&bytes)), Some(bytes.clone()));
            prop_assert_eq!(decode_hex(&encode_hex(&bytes).to_uppercase()), Some(bytes));
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), json in any::<bool>()) {
            let format = if json { BodyFormat::Json } else { BodyFormat::Form };
            let _ = jwt_of(format, &body);
        }

        #[test]
        fn arbitrary_claims_never_panic_and_keep_limits(
            imei in "\\PC{0,20}", momsn in "\\PC{0,8}", data in "[0-9a-fA-F]{0,700}",
            lat in "\\PC{0,10}",
        ) {
            let mut c = claims();
            c.insert("imei".into(), imei.into());
            c.insert("momsn".into(), momsn.into());
            c.insert("data".into(), data.into());
            c.insert("iridium_latitude".into(), lat.into());
            if let Ok(m) = MoMessage::from_claims(&c) {
                prop_assert_eq!(m.imei.address().len(), 15);
                prop_assert!(m.data.len() <= MAX_MO_BYTES);
                prop_assert!(m.latitude.is_none_or(f64::is_finite));
            }
        }
    }
}
