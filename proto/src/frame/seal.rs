//! Sealing and opening a frame.
//!
//! ```text
//! frame = header(1) | counter(3) | [key id(4)] | AES-CCM(plaintext) | tag(8)
//! key   = the sending direction's key (context.rs)
//! nonce = RFC 8613 §5.2 from the common IV, the sender's id and the counter (nonce.rs)
//! AAD   = header byte | counter(3) | key id(4, always, even when not on the wire)
//!         | len(device id)(1) | device id(1..=253)
//! ```
//!
//! So a frame is bound to its type, epoch parity, key-id flag, counter, the
//! device's key id and its device id; the epoch itself is bound through the
//! keys (it is the OSCORE ID Context). The carrier is deliberately not in the
//! AAD: any link may carry any frame.
//!
//! Neither function allocates: the caller passes the output buffer, whose
//! length is the budget.

use super::aead::{KEY_LEN, NONCE_LEN, TAG_LEN, decrypt_detached, encrypt_detached};
use super::context::{DEVICE_ID_MAX, FrameContext};
use super::header::{FrameType, Header};
use super::{COUNTER_LEN, COUNTER_MAX, FrameError, KEY_ID_LEN, OVERHEAD};

/// Bytes of the longest AAD (device id of [`DEVICE_ID_MAX`] bytes).
const AAD_MAX: usize = 1 + COUNTER_LEN + KEY_ID_LEN + 1 + DEVICE_ID_MAX;

/// An opened frame: its header and the authenticated plaintext.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The cleartext header (type, epoch parity, counter, key id if carried).
    pub header: Header,
    /// The decrypted, authenticated payload.
    pub plaintext: &'a [u8],
}

/// Bytes a sealed frame of `plaintext_len` bytes takes on the wire.
#[must_use]
pub const fn sealed_len(plaintext_len: usize, with_key_id: bool) -> usize {
    OVERHEAD + plaintext_len + if with_key_id { KEY_ID_LEN } else { 0 }
}

/// Seal `plaintext` as frame number `counter` of type `frame_type` into
/// `out`, whose length is the budget. Returns the frame's length.
///
/// `counter` must come from the sender's
/// [`CounterReserver`](super::CounterReserver): a counter used twice under
/// one context reuses a nonce, which breaks CCM. `with_key_id` is for carriers
/// that do not identify the device (UDP).
///
/// # Errors
/// [`FrameError::WrongDirection`] if this context's role does not send
/// `frame_type`; [`FrameError::CounterExhausted`] past 24 bits;
/// [`FrameError::TooLarge`] if the frame does not fit `out`.
pub fn seal(
    ctx: &FrameContext,
    frame_type: FrameType,
    counter: u32,
    with_key_id: bool,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let direction = frame_type.direction();
    if direction != ctx.role().sends() {
        return Err(FrameError::WrongDirection);
    }
    if counter > COUNTER_MAX {
        return Err(FrameError::CounterExhausted);
    }
    let header = Header {
        frame_type,
        epoch_parity: ctx.epoch_parity(),
        counter,
        key_id: with_key_id.then(|| ctx.key_id()),
    };
    let needed = sealed_len(plaintext.len(), with_key_id);
    let budget = out.len();
    let Some(frame) = out.get_mut(..needed) else {
        return Err(FrameError::TooLarge { budget, needed });
    };
    let header_len = header.encode(frame)?;
    let (body, tag_out) = frame[header_len..].split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    let aad = aad(ctx, &header)?;
    let nonce = ctx.nonce(direction, counter)?;
    let tag = encrypt_detached(ctx.key(direction), &nonce, &aad, body)?;
    tag_out.copy_from_slice(&tag);
    Ok(needed)
}

/// Open `frame` into `out` (at least as long as the plaintext: the frame's
/// length minus its overhead). Never panics, whatever the bytes.
///
/// Replay is not checked here: the receiver feeds `header.counter` to its
/// [`ReplayWindow`](super::ReplayWindow) after this succeeded.
///
/// # Errors
/// Header errors of [`Header::parse`]; [`FrameError::WrongDirection`],
/// [`FrameError::KeyIdMismatch`] or [`FrameError::EpochMismatch`] if the
/// frame is not for this context; [`FrameError::TooLarge`] if `out` is too
/// short; [`FrameError::AuthenticationFailed`] if the tag does not verify
/// (then `out` holds no plaintext).
pub fn open<'a>(
    ctx: &FrameContext,
    frame: &[u8],
    out: &'a mut [u8],
) -> Result<Opened<'a>, FrameError> {
    let (header, header_len) = check(ctx, frame)?;
    let (body, tag) = frame[header_len..].split_at(frame.len() - header_len - TAG_LEN);
    let budget = out.len();
    let Some(plaintext) = out.get_mut(..body.len()) else {
        return Err(FrameError::TooLarge {
            budget,
            needed: body.len(),
        });
    };
    plaintext.copy_from_slice(body);
    decrypt(ctx, &header, plaintext, tag)?;
    Ok(Opened { header, plaintext })
}

/// Open `frame` in place: the plaintext is decrypted over the ciphertext and
/// returned as a slice of `frame`. Same checks and errors as [`open`].
///
/// # Errors
/// As [`open`] (never [`FrameError::TooLarge`]).
pub fn open_in_place<'a>(
    ctx: &FrameContext,
    frame: &'a mut [u8],
) -> Result<Opened<'a>, FrameError> {
    let (header, header_len) = check(ctx, frame)?;
    let body_len = frame.len() - header_len - TAG_LEN;
    let (body, tag) = frame[header_len..].split_at_mut(body_len);
    decrypt(ctx, &header, body, tag)?;
    Ok(Opened {
        header,
        plaintext: body,
    })
}

/// Parse the header and check that the frame is meant for this context.
fn check(ctx: &FrameContext, frame: &[u8]) -> Result<(Header, usize), FrameError> {
    let (header, header_len) = Header::parse(frame)?;
    if header.frame_type.direction() != ctx.role().receives() {
        return Err(FrameError::WrongDirection);
    }
    if header.key_id.is_some_and(|k| k != ctx.key_id()) {
        return Err(FrameError::KeyIdMismatch);
    }
    if header.epoch_parity != ctx.epoch_parity() {
        return Err(FrameError::EpochMismatch);
    }
    Ok((header, header_len))
}

fn decrypt(
    ctx: &FrameContext,
    header: &Header,
    body: &mut [u8],
    tag: &[u8],
) -> Result<(), FrameError> {
    let tag: &[u8; TAG_LEN] = tag
        .try_into()
        .map_err(|_| FrameError::Malformed("tag length"))?;
    let direction = header.frame_type.direction();
    let aad = aad(ctx, header)?;
    let nonce: [u8; NONCE_LEN] = ctx.nonce(direction, header.counter)?;
    let key: &[u8; KEY_LEN] = ctx.key(direction);
    decrypt_detached(key, &nonce, &aad, body, tag)
}

/// The associated data of a frame (module docs).
fn aad(ctx: &FrameContext, header: &Header) -> Result<heapless::Vec<u8, AAD_MAX>, FrameError> {
    const OVERFLOW: FrameError = FrameError::InvalidParameter("device id too long");
    let counter = header.counter.to_be_bytes();
    let device_id = ctx.device_id();
    let device_id_len = u8::try_from(device_id.len()).map_err(|_| OVERFLOW)?;
    let mut aad = heapless::Vec::new();
    for part in [
        &[header.first_byte()][..],
        &counter[1..],
        &ctx.key_id().0,
        &[device_id_len],
        device_id,
    ] {
        aad.extend_from_slice(part).map_err(|_| OVERFLOW)?;
    }
    Ok(aad)
}
