//! Errors of the sealed-frame layer: one plain enum, `Copy`, no allocation,
//! `core::fmt::Display` + `core::error::Error` (so it works without `std`).
//!
//! Every error says what was wrong with the frame or the call, never any
//! key material or plaintext.

use core::fmt;

/// Why a frame could not be sealed, parsed or opened, or a context built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the smallest frame of this kind (header, counter,
    /// key id if flagged, tag).
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes the header announces at least.
        min: usize,
    },
    /// The version bits name a format this code does not speak.
    UnsupportedVersion(u8),
    /// The type bits hold the reserved value `0b11`.
    ReservedType,
    /// The reserved low bit of the header byte is set.
    ReservedBits,
    /// The sealed frame does not fit the caller's budget (the `out` buffer).
    TooLarge {
        /// Bytes the link (or the buffer) allows.
        budget: usize,
        /// Bytes the sealed frame needs.
        needed: usize,
    },
    /// The counter does not fit in 24 bits: the context must be rotated (new
    /// epoch) before a frame with this counter is sent.
    CounterExhausted,
    /// The frame type does not travel in the direction this endpoint sends
    /// (seal) or receives (open).
    WrongDirection,
    /// The key id carried in the frame is not the context's.
    KeyIdMismatch,
    /// The epoch-parity bit is not the context's: try the other epoch's
    /// context (during a rotation) or drop the frame.
    EpochMismatch,
    /// The tag did not verify: wrong key, wrong epoch, wrong device or a
    /// modified frame. Nothing of the plaintext is released.
    AuthenticationFailed,
    /// A parameter is outside what the format allows (for example an OSCORE
    /// identifier longer than 7 bytes or a device id longer than 253 bytes).
    InvalidParameter(&'static str),
    /// Bytes that do not decode as the expected structure (acks, rotation
    /// payloads).
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len, min } => {
                write!(f, "frame too short: {len} bytes, at least {min} needed")
            }
            Self::UnsupportedVersion(v) => write!(f, "unsupported frame version {v}"),
            Self::ReservedType => f.write_str("reserved frame type"),
            Self::ReservedBits => f.write_str("reserved header bit set"),
            Self::TooLarge { budget, needed } => {
                write!(f, "sealed frame needs {needed} bytes, budget is {budget}")
            }
            Self::CounterExhausted => {
                f.write_str("frame counter exhausted (24 bits): rotate the context")
            }
            Self::WrongDirection => f.write_str("frame type does not travel in this direction"),
            Self::KeyIdMismatch => f.write_str("frame key id is not this context's"),
            Self::EpochMismatch => f.write_str("frame epoch parity is not this context's"),
            Self::AuthenticationFailed => f.write_str("frame authentication failed"),
            Self::InvalidParameter(what) => write!(f, "invalid parameter: {what}"),
            Self::Malformed(what) => write!(f, "malformed: {what}"),
        }
    }
}

impl core::error::Error for FrameError {}
