//! Keys: OSCORE key derivation (RFC 8613 §3.2.1) and the per-device
//! [`FrameContext`] built from it.
//!
//! From a master secret and salt, HKDF-SHA256 derives
//! `key = HKDF(salt, secret, info = [id, id_context, alg_aead, type, L], L)`
//! with `info` a CBOR array: `id` a bstr, `id_context` a bstr or `nil`,
//! `alg_aead` = 10 (AES-CCM-16-64-128), `type` the text "Key" or "IV" and
//! `L` = 16 for keys, 13 for the common IV (whose `id` is the empty bstr).
//!
//! flotta's choice of identifiers (see `proto/FRAMES.md`):
//! - device Sender ID = the 4-byte key id, server Sender ID = the empty bstr
//!   (OSCORE allows one empty id per context);
//! - ID Context = the epoch as 4 big-endian bytes, so a new epoch gives new
//!   keys and a new common IV.
//!
//! Keys are never printed: `Debug` redacts them, and they are zeroed on drop.

use core::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

use super::aead::{KEY_LEN, NONCE_LEN};
use super::nonce::oscore_nonce;
use super::{Direction, FrameError, Role};

/// Bytes of a device's master secret.
pub const MASTER_SECRET_LEN: usize = 32;
/// The longest device id bound into a frame (a Kubernetes object name, which
/// is what a Flotta device id is, has at most 253 bytes).
pub const DEVICE_ID_MAX: usize = 253;
/// The longest OSCORE Sender/Recipient ID with a 13-byte nonce (§5.2).
const ID_MAX: usize = NONCE_LEN - 6;
/// The longest ID Context [`derive_oscore`] accepts (ours is 4 bytes).
const ID_CONTEXT_MAX: usize = 64;
/// COSE algorithm identifier of AES-CCM-16-64-128.
const ALG_AES_CCM_16_64_128: u8 = 10;

/// The 4-byte key id naming a device's context on carriers that do not
/// identify the device (UDP). Public, not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

/// The output of an OSCORE security-context derivation. `Debug` redacts;
/// the bytes are zeroed on drop.
#[derive(Clone)]
pub struct OscoreKeys {
    /// The key this endpoint seals with.
    pub sender_key: [u8; KEY_LEN],
    /// The key this endpoint opens with.
    pub recipient_key: [u8; KEY_LEN],
    /// The common IV, XORed into every nonce.
    pub common_iv: [u8; NONCE_LEN],
}

impl fmt::Debug for OscoreKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OscoreKeys { <redacted> }")
    }
}

impl Drop for OscoreKeys {
    fn drop(&mut self) {
        self.sender_key.zeroize();
        self.recipient_key.zeroize();
        self.common_iv.zeroize();
    }
}

/// Derive an OSCORE security context exactly as RFC 8613 §3.2.1 does, for
/// AES-CCM-16-64-128 and HKDF-SHA256. An empty `master_salt` is OSCORE's
/// default (the empty byte string, which HKDF treats as HashLen zeros).
///
/// # Errors
/// [`FrameError::InvalidParameter`] if an id is longer than 7 bytes or the
/// ID Context longer than 64 bytes.
pub fn derive_oscore(
    master_secret: &[u8],
    master_salt: &[u8],
    sender_id: &[u8],
    recipient_id: &[u8],
    id_context: Option<&[u8]>,
) -> Result<OscoreKeys, FrameError> {
    if sender_id.len() > ID_MAX || recipient_id.len() > ID_MAX {
        return Err(FrameError::InvalidParameter(
            "an OSCORE id is at most 7 bytes",
        ));
    }
    if id_context.is_some_and(|c| c.len() > ID_CONTEXT_MAX) {
        return Err(FrameError::InvalidParameter(
            "ID Context longer than 64 bytes",
        ));
    }
    let hkdf = Hkdf::<Sha256>::new(Some(master_salt), master_secret);
    let mut keys = OscoreKeys {
        sender_key: [0; KEY_LEN],
        recipient_key: [0; KEY_LEN],
        common_iv: [0; NONCE_LEN],
    };
    expand(&hkdf, sender_id, id_context, "Key", &mut keys.sender_key)?;
    expand(
        &hkdf,
        recipient_id,
        id_context,
        "Key",
        &mut keys.recipient_key,
    )?;
    expand(&hkdf, &[], id_context, "IV", &mut keys.common_iv)?;
    Ok(keys)
}

/// One HKDF-Expand with the CBOR `info` of §3.2.1.
fn expand(
    hkdf: &Hkdf<Sha256>,
    id: &[u8],
    id_context: Option<&[u8]>,
    kind: &str,
    okm: &mut [u8],
) -> Result<(), FrameError> {
    const OVERFLOW: FrameError = FrameError::InvalidParameter("HKDF info too long");
    let mut info = heapless::Vec::<u8, 96>::new();
    let mut push = |bytes: &[u8]| info.extend_from_slice(bytes).map_err(|_| OVERFLOW);
    push(&[0x85])?; // array(5)
    cbor_head(2, id.len(), &mut push)?; // bstr id
    push(id)?;
    match id_context {
        Some(ctx) => {
            cbor_head(2, ctx.len(), &mut push)?;
            push(ctx)?;
        }
        None => push(&[0xf6])?, // nil
    }
    push(&[ALG_AES_CCM_16_64_128])?; // small uint
    cbor_head(3, kind.len(), &mut push)?; // tstr "Key" / "IV"
    push(kind.as_bytes())?;
    let l = u8::try_from(okm.len()).map_err(|_| OVERFLOW)?;
    cbor_head(0, usize::from(l), &mut push)?; // uint L
    hkdf.expand(&info, okm)
        .map_err(|_| FrameError::InvalidParameter("HKDF output too long"))
}

/// A CBOR head (major type and length/value) for values below 256.
fn cbor_head(
    major: u8,
    len: usize,
    push: &mut impl FnMut(&[u8]) -> Result<(), FrameError>,
) -> Result<(), FrameError> {
    let m = major << 5;
    match u8::try_from(len) {
        Ok(n) if n < 24 => push(&[m | n]),
        Ok(n) => push(&[m | 24, n]),
        Err(_) => Err(FrameError::InvalidParameter("CBOR item too long")),
    }
}

/// One device's sealed-frame context for one epoch, as one end of the link
/// holds it: both directions' keys, the common IV, the key id and the device
/// id bound into every frame. The device and the server build it from the
/// same material (provisioned over mTLS, never over the narrow link).
///
/// `Debug` shows the role, key id, epoch and device id, never a key.
pub struct FrameContext {
    role: Role,
    key_id: KeyId,
    epoch: u32,
    keys: OscoreKeys,
    device_id: heapless::Vec<u8, DEVICE_ID_MAX>,
}

impl FrameContext {
    /// Derive the context of `role` for the device `device_id` (its Flotta
    /// device id, bound into every frame's associated data).
    ///
    /// # Errors
    /// [`FrameError::InvalidParameter`] if `device_id` is empty or longer
    /// than [`DEVICE_ID_MAX`].
    pub fn new(
        role: Role,
        key_id: KeyId,
        epoch: u32,
        master_secret: &[u8; MASTER_SECRET_LEN],
        master_salt: &[u8],
        device_id: &[u8],
    ) -> Result<Self, FrameError> {
        let device_id = heapless::Vec::from_slice(device_id)
            .ok()
            .filter(|d: &heapless::Vec<u8, DEVICE_ID_MAX>| !d.is_empty())
            .ok_or(FrameError::InvalidParameter(
                "device id must be 1 to 253 bytes",
            ))?;
        let device = key_id.0;
        let (sender_id, recipient_id): (&[u8], &[u8]) = match role {
            Role::Device => (&device, &[]),
            Role::Server => (&[], &device),
        };
        let epoch_bytes = epoch.to_be_bytes();
        let keys = derive_oscore(
            master_secret,
            master_salt,
            sender_id,
            recipient_id,
            Some(&epoch_bytes),
        )?;
        Ok(Self {
            role,
            key_id,
            epoch,
            keys,
            device_id,
        })
    }

    /// Which end of the link this context is.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The device's key id.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The epoch (the OSCORE ID Context).
    #[must_use]
    pub const fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The epoch's low bit, carried in every header.
    #[must_use]
    pub const fn epoch_parity(&self) -> bool {
        self.epoch & 1 == 1
    }

    /// The device id bound into every frame.
    #[must_use]
    pub fn device_id(&self) -> &[u8] {
        &self.device_id
    }

    /// The key of `direction`: this end's sender key if it sends that way,
    /// else its recipient key.
    pub(crate) fn key(&self, direction: Direction) -> &[u8; KEY_LEN] {
        if direction == self.role.sends() {
            &self.keys.sender_key
        } else {
            &self.keys.recipient_key
        }
    }

    /// The nonce of the frame numbered `counter` travelling `direction`: the
    /// Partial IV was generated by that direction's sender, so its Sender ID
    /// goes in (the key id up, the empty id down).
    pub(crate) fn nonce(
        &self,
        direction: Direction,
        counter: u32,
    ) -> Result<[u8; NONCE_LEN], FrameError> {
        let id: &[u8] = match direction {
            Direction::Up => &self.key_id.0,
            Direction::Down => &[],
        };
        oscore_nonce(&self.keys.common_iv, id, u64::from(counter))
    }
}

impl fmt::Debug for FrameContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameContext")
            .field("role", &self.role)
            .field("key_id", &self.key_id)
            .field("epoch", &self.epoch)
            .field("device_id", &self.device_id.as_slice())
            .field("keys", &"<redacted>")
            .finish()
    }
}
