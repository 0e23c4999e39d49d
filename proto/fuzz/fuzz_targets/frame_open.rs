//! Fuzz the receiving side of sealed frames: arbitrary bytes into the header
//! parser and into `open` / `open_in_place` with a fixed server context. They
//! must never panic, and never accept a frame (forging an 8-byte CCM tag is
//! not something a fuzzer does). The same bytes, sealed as a payload by the
//! device, must open to themselves.
#![no_main]

use flotta_proto::frame::{
    FrameContext, FrameType, Header, KeyId, Role, open, open_in_place, seal,
};
use libfuzzer_sys::fuzz_target;

const SECRET: [u8; 32] = [0x5a; 32];
const SALT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
const KEY_ID: KeyId = KeyId([0, 0, 0, 1]);
const DEVICE: &[u8] = b"fuzz-device";

fn context(role: Role) -> FrameContext {
    FrameContext::new(role, KEY_ID, 1, &SECRET, &SALT, DEVICE).expect("context")
}

fuzz_target!(|data: &[u8]| {
    let server = context(Role::Server);
    if let Ok((header, len)) = Header::parse(data) {
        assert_eq!(len, header.len());
    }
    let mut plain = [0u8; 2048];
    assert!(
        open(&server, data, &mut plain).is_err(),
        "forged frame accepted"
    );
    let mut frame = data.to_vec();
    assert!(
        open_in_place(&server, &mut frame).is_err(),
        "forged frame accepted"
    );

    // Round trip: the input as a payload.
    let device = context(Role::Device);
    let counter = data.first().map_or(0, |&b| u32::from(b) << 8);
    let with_key_id = data.len() % 2 == 1;
    let mut sealed = [0u8; 2048];
    if let Ok(n) = seal(
        &device,
        FrameType::UplinkData,
        counter,
        with_key_id,
        data,
        &mut sealed,
    ) {
        let opened = open(&server, &sealed[..n], &mut plain).expect("own frame opens");
        assert_eq!(opened.plaintext, data);
        assert_eq!(opened.header.counter, counter);
    }
});
