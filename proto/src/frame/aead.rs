//! AES-CCM-16-64-128 (COSE algorithm 10, OSCORE's mandatory AEAD): AES-128,
//! an 8-byte tag and a 13-byte nonce (so CCM's length field L = 2: at most
//! 65 535 bytes a message, far above any narrow-link budget).
//!
//! Thin, in-place and allocation-free wrappers over RustCrypto's `ccm` and
//! `aes`; the known-answer tests in `tests/frame_kat.rs` check them against
//! RFC 8613 Appendix C.4–C.8.

use aes::Aes128;
use ccm::Ccm;
use ccm::aead::{AeadInOut, KeyInit};
use ccm::consts::{U8, U13};

use super::FrameError;

/// AES-128 key length.
pub const KEY_LEN: usize = 16;
/// CCM nonce length (OSCORE's AES-CCM-16-64-128).
pub const NONCE_LEN: usize = 13;
/// CCM tag length (the "64" in AES-CCM-16-64-128).
pub const TAG_LEN: usize = 8;

type AesCcm16_64_128 = Ccm<Aes128, U8, U13>;

/// Encrypt `buffer` in place; returns the 8-byte tag.
///
/// # Errors
/// [`FrameError::TooLarge`] if the message exceeds what CCM with L = 2
/// can carry (65 535 bytes).
pub fn encrypt_detached(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; TAG_LEN], FrameError> {
    let cipher = AesCcm16_64_128::new(&(*key).into());
    let tag = cipher
        .encrypt_inout_detached(&(*nonce).into(), aad, (&mut *buffer).into())
        .map_err(|_| FrameError::TooLarge {
            budget: usize::from(u16::MAX),
            needed: buffer.len(),
        })?;
    Ok(tag.into())
}

/// Check the tag and decrypt `buffer` in place. On failure `buffer` is zeroed:
/// no unauthenticated plaintext leaves this function.
///
/// # Errors
/// [`FrameError::AuthenticationFailed`] if the tag does not verify.
pub fn decrypt_detached(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), FrameError> {
    let cipher = AesCcm16_64_128::new(&(*key).into());
    let result =
        cipher.decrypt_inout_detached(&(*nonce).into(), aad, (&mut *buffer).into(), &(*tag).into());
    if result.is_err() {
        buffer.fill(0);
        return Err(FrameError::AuthenticationFailed);
    }
    Ok(())
}
