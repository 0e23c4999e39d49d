//! Fuzz the Rock7 MO webhook decoders (untrusted bytes from the network):
//! body format detection, the `JWT` field of a form or JSON body, JWT
//! verification (segments, base64url, JSON, algorithm, signature), and the
//! MO taken from claims. None may panic; a message taken from claims keeps
//! its limits (15-digit IMEI, at most 340 bytes of data), and its data
//! survives a hex round trip.
#![no_main]

use std::sync::OnceLock;

use flotta_server::rock7::mo::{BodyFormat, MoMessage, MAX_MO_BYTES, decode_hex, encode_hex, jwt_of};
use flotta_server::rock7::Rock7Key;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static Rock7Key {
    static KEY: OnceLock<Rock7Key> = OnceLock::new();
    KEY.get_or_init(|| {
        Rock7Key::from_pem(include_bytes!("../../tests/fixtures/rock7-test-only.pub.pem"))
            .expect("the test key parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let ct = match data.first() {
        Some(b) if b % 3 == 0 => Some("application/json"),
        Some(b) if b % 3 == 1 => Some("application/x-www-form-urlencoded"),
        _ => None,
    };
    let body = data.get(1..).unwrap_or_default();
    let format = BodyFormat::detect(ct, body);
    if let Ok(token) = jwt_of(format, body) {
        let _ = key().verify(&token);
    }
    // Claims a verified token could carry: any JSON object.
    if let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(body) {
        if let Ok(m) = MoMessage::from_claims(&claims) {
            assert_eq!(m.imei.address().len(), 15);
            assert!(m.data.len() <= MAX_MO_BYTES);
            assert_eq!(decode_hex(&encode_hex(&m.data)).as_deref(), Some(&m.data[..]));
        }
    }
});
