//! The cleartext part of a frame: header byte, counter and optional key id.
//!
//! ```text
//! byte 0     : V V V T T K E R
//!              VVV  version (001 = this format)
//!              TT   type: 00 uplink data, 01 downlink answer, 10 key rotation, 11 reserved
//!              K    a 4-byte key id follows the counter (UDP: the carrier does not
//!                   identify the device)
//!              E    epoch parity (epoch & 1): picks the current or the previous
//!                   context during a rotation without trial decryption
//!              R    reserved, 0
//! bytes 1..4 : counter, 24-bit big-endian (the OSCORE Partial IV)
//! [4 bytes]  : key id, only if K = 1
//! ```
//!
//! All of it is authenticated (it is part of the AEAD's associated data, see
//! `seal.rs`), but none of it is secret.

use super::context::KeyId;
use super::{COUNTER_LEN, COUNTER_MAX, Direction, FrameError, KEY_ID_LEN, TAG_LEN};

/// The format version this code writes and reads.
pub const VERSION: u8 = 1;

const VERSION_SHIFT: u8 = 5;
const TYPE_SHIFT: u8 = 3;
const TYPE_MASK: u8 = 0b11;
const KEY_ID_FLAG: u8 = 0b100;
const EPOCH_FLAG: u8 = 0b010;
const RESERVED_BIT: u8 = 0b001;

/// What a frame carries, and so which way it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// Records from the device (type bits `00`).
    UplinkData,
    /// The server's one answer per uplink exchange: acks, configuration
    /// (type bits `01`).
    DownlinkAnswer,
    /// A new epoch's material, sealed under the current epoch (type bits `10`).
    KeyRotation,
}

impl FrameType {
    /// The direction a frame of this type travels.
    #[must_use]
    pub const fn direction(self) -> Direction {
        match self {
            Self::UplinkData => Direction::Up,
            Self::DownlinkAnswer | Self::KeyRotation => Direction::Down,
        }
    }

    const fn bits(self) -> u8 {
        match self {
            Self::UplinkData => 0b00,
            Self::DownlinkAnswer => 0b01,
            Self::KeyRotation => 0b10,
        }
    }

    const fn from_bits(bits: u8) -> Result<Self, FrameError> {
        match bits & TYPE_MASK {
            0b00 => Ok(Self::UplinkData),
            0b01 => Ok(Self::DownlinkAnswer),
            0b10 => Ok(Self::KeyRotation),
            _ => Err(FrameError::ReservedType),
        }
    }
}

/// The cleartext header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the frame carries.
    pub frame_type: FrameType,
    /// The low bit of the sender's epoch.
    pub epoch_parity: bool,
    /// The sender's counter for this direction and epoch (24 bits).
    pub counter: u32,
    /// The key id, when the frame carries it.
    pub key_id: Option<KeyId>,
}

impl Header {
    /// Bytes this header takes on the wire: 4, or 8 with a key id.
    #[must_use]
    pub const fn len(&self) -> usize {
        1 + COUNTER_LEN + if self.key_id.is_some() { KEY_ID_LEN } else { 0 }
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The header byte (byte 0).
    #[must_use]
    pub const fn first_byte(&self) -> u8 {
        let mut b = (VERSION << VERSION_SHIFT) | (self.frame_type.bits() << TYPE_SHIFT);
        if self.key_id.is_some() {
            b |= KEY_ID_FLAG;
        }
        if self.epoch_parity {
            b |= EPOCH_FLAG;
        }
        b
    }

    /// Write the header to the start of `out`; returns the bytes written.
    ///
    /// # Errors
    /// [`FrameError::CounterExhausted`] if the counter needs more than 24
    /// bits, [`FrameError::TooLarge`] if `out` is shorter than the header.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        if self.counter > COUNTER_MAX {
            return Err(FrameError::CounterExhausted);
        }
        let len = self.len();
        let Some(dst) = out.get_mut(..len) else {
            return Err(FrameError::TooLarge {
                budget: out.len(),
                needed: len,
            });
        };
        let c = self.counter.to_be_bytes();
        dst[0] = self.first_byte();
        dst[1..4].copy_from_slice(&c[1..4]);
        if let Some(kid) = self.key_id {
            dst[4..8].copy_from_slice(&kid.0);
        }
        Ok(len)
    }

    /// Parse the header at the start of a sealed frame, and check that the
    /// frame is long enough to hold at least the tag after it. Returns the
    /// header and its length. Never panics, whatever the bytes.
    ///
    /// A server on a carrier without device identity (UDP) calls this first
    /// to find the key id, then the context, then [`open`](super::open).
    ///
    /// # Errors
    /// [`FrameError::TooShort`], [`FrameError::UnsupportedVersion`],
    /// [`FrameError::ReservedType`], [`FrameError::ReservedBits`].
    pub fn parse(frame: &[u8]) -> Result<(Self, usize), FrameError> {
        let Some(&b0) = frame.first() else {
            return Err(FrameError::TooShort {
                len: 0,
                min: 1 + COUNTER_LEN + TAG_LEN,
            });
        };
        let version = b0 >> VERSION_SHIFT;
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        if b0 & RESERVED_BIT != 0 {
            return Err(FrameError::ReservedBits);
        }
        let frame_type = FrameType::from_bits(b0 >> TYPE_SHIFT)?;
        let has_key_id = b0 & KEY_ID_FLAG != 0;
        let header_len = 1 + COUNTER_LEN + if has_key_id { KEY_ID_LEN } else { 0 };
        let min = header_len + TAG_LEN;
        if frame.len() < min {
            return Err(FrameError::TooShort {
                len: frame.len(),
                min,
            });
        }
        let counter = u32::from_be_bytes([0, frame[1], frame[2], frame[3]]);
        let key_id = if has_key_id {
            Some(KeyId([frame[4], frame[5], frame[6], frame[7]]))
        } else {
            None
        };
        let header = Self {
            frame_type,
            epoch_parity: b0 & EPOCH_FLAG != 0,
            counter,
            key_id,
        };
        Ok((header, header_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_and_flag_round_trips() {
        for frame_type in [
            FrameType::UplinkData,
            FrameType::DownlinkAnswer,
            FrameType::KeyRotation,
        ] {
            for epoch_parity in [false, true] {
                for key_id in [None, Some(KeyId([1, 2, 3, 4]))] {
                    let h = Header {
                        frame_type,
                        epoch_parity,
                        counter: 0x00AB_CDEF,
                        key_id,
                    };
                    let mut buf = [0u8; 16];
                    let n = h.encode(&mut buf).unwrap();
                    assert_eq!(n, h.len());
                    assert_eq!(buf[0] >> 5, VERSION);
                    assert_eq!(&buf[1..4], &[0xAB, 0xCD, 0xEF]);
                    let (back, len) = Header::parse(&buf).unwrap();
                    assert_eq!((back, len), (h, n));
                }
            }
        }
    }

    #[test]
    fn rejects_reserved_values_and_short_frames() {
        let ok = VERSION << VERSION_SHIFT;
        let mut frame = [0u8; 12];
        frame[0] = ok;
        assert!(Header::parse(&frame).is_ok());
        assert_eq!(
            Header::parse(&frame[..11]).unwrap_err(),
            FrameError::TooShort { len: 11, min: 12 }
        );
        frame[0] = ok | KEY_ID_FLAG;
        assert_eq!(
            Header::parse(&frame).unwrap_err(),
            FrameError::TooShort { len: 12, min: 16 }
        );
        frame[0] = ok | RESERVED_BIT;
        assert_eq!(Header::parse(&frame).unwrap_err(), FrameError::ReservedBits);
        frame[0] = ok | (0b11 << TYPE_SHIFT);
        assert_eq!(Header::parse(&frame).unwrap_err(), FrameError::ReservedType);
        frame[0] = 2 << VERSION_SHIFT;
        assert_eq!(
            Header::parse(&frame).unwrap_err(),
            FrameError::UnsupportedVersion(2)
        );
        assert!(matches!(
            Header::parse(&[]),
            Err(FrameError::TooShort { len: 0, .. })
        ));
    }

    #[test]
    fn counter_beyond_24_bits_is_refused() {
        let h = Header {
            frame_type: FrameType::UplinkData,
            epoch_parity: false,
            counter: COUNTER_MAX + 1,
            key_id: None,
        };
        assert_eq!(h.encode(&mut [0u8; 8]), Err(FrameError::CounterExhausted));
    }
}
