//! Fuzz The Things Stack v3 uplink-message decoder (untrusted JSON from the
//! webhook listener), in both regions. It may not panic; an uplink it
//! accepts keeps its limits: a canonical DevEUI, at most 242 bytes of
//! data, a device id that is a valid TTS id (it goes into a URL path).
#![no_main]

use flotta_server::lorawan::Region;
use flotta_server::lorawan::tts::{decode_uplink, valid_id};
use flotta_server::lorawan::uplink::MAX_FRM_PAYLOAD_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let region = match data.first() {
        Some(b) if b % 2 == 0 => Region::Eu868,
        _ => Region::Us915,
    };
    let body = data.get(1..).unwrap_or_default();
    if let Ok(up) = decode_uplink(body, region) {
        assert_eq!(up.uplink.dev_eui.address().len(), 16);
        assert!(up.uplink.data.len() <= MAX_FRM_PAYLOAD_BYTES);
        assert!(valid_id(&up.device_id));
        assert!(up.device_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
});
