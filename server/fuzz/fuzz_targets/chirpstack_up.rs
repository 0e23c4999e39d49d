//! Fuzz the ChirpStack v4 `up` event decoder (untrusted JSON from the
//! webhook listener, read as `chirpstack_api`'s `integration::UplinkEvent`
//! with its pbjson serde, then checked). It may not panic; an uplink it accepts keeps its
//! limits: a canonical DevEUI (16 lower-case hex digits), at most 242
//! bytes of data, an FPort that is not 0.
#![no_main]

use flotta_server::lorawan::chirpstack::decode_up;
use flotta_server::lorawan::uplink::MAX_FRM_PAYLOAD_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(up) = decode_up(data) {
        let eui = up.dev_eui.address();
        assert_eq!(eui.len(), 16);
        assert!(eui.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(up.data.len() <= MAX_FRM_PAYLOAD_BYTES);
        assert_ne!(up.f_port, Some(0));
        assert!(up.dr.is_none_or(|dr| dr <= 15));
    }
});
