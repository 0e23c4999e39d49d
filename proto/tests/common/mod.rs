//! Helpers shared by the frame test files.
#![allow(dead_code, unreachable_pub)]

use flotta_proto::frame::{FrameContext, KeyId, Role};

/// Bytes from a hex string (test vectors); panics on bad hex.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// A fixed-size array from a hex string.
pub fn hex_array<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().expect("hex length")
}

/// Test material for one device (not a vector: any bytes do).
pub const SECRET: [u8; 32] = [0x42; 32];
pub const SALT: [u8; 8] = [7, 6, 5, 4, 3, 2, 1, 0];
pub const KEY_ID: KeyId = KeyId([0xde, 0xad, 0xbe, 0xef]);
pub const DEVICE_ID: &[u8] = b"3f1c9a52-5b7e-4c1d-9d2a-0b6f4e8a7c11";

/// Both ends of one device's context for `epoch`.
pub fn pair(epoch: u32) -> (FrameContext, FrameContext) {
    let make =
        |role| FrameContext::new(role, KEY_ID, epoch, &SECRET, &SALT, DEVICE_ID).expect("context");
    (make(Role::Device), make(Role::Server))
}
