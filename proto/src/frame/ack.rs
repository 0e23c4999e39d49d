//! The cumulative acknowledgement a downlink answer carries: what the server
//! has stored of one device's uplink frames (by counter).
//!
//! `Ack { below, bitmap }` means: every counter `< below` is settled (stored,
//! or given up by the device, which re-packs the records of frames it stops
//! waiting for), `below` itself is not stored, and bit `i` of `bitmap` says
//! counter `below + 1 + i` is stored. An empty server answers
//! `Ack { below: 0, bitmap: 0 }`.
//!
//! Wire form: two unsigned LEB128 varints, `below` then `bitmap`, canonical
//! (no redundant zero groups): 2 bytes for a young context, 4–5 typically,
//! 9 at most. Self-delimiting, so it can sit in a record stream.

use super::{COUNTER_MAX, FrameError};

/// The longest encoded ack: 4 bytes of `below` (≤ 2^24) + 5 of `bitmap`.
pub(crate) const ACK_MAX_LEN: usize = 9;
/// How many counters above `below` the bitmap covers.
const BITMAP_BITS: u32 = 32;

/// A cumulative acknowledgement of uplink counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ack {
    /// Every counter below this one is settled; at most 2^24.
    pub below: u32,
    /// Bit `i`: counter `below + 1 + i` is stored.
    pub bitmap: u32,
}

impl Ack {
    /// Whether this ack says `counter` is stored (or settled).
    #[must_use]
    pub const fn acks(&self, counter: u32) -> bool {
        if counter < self.below {
            return true;
        }
        if counter == self.below {
            return false;
        }
        let offset = counter - self.below - 1;
        offset < BITMAP_BITS && self.bitmap & (1 << offset) != 0
    }

    /// Write the ack to the start of `out`; returns the bytes written.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] if the ack names counters beyond 24 bits;
    /// [`FrameError::TooLarge`] if `out` is too short.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        self.validate()?;
        let mut buf = [0u8; ACK_MAX_LEN];
        let n = write_varint(self.below, &mut buf);
        let n = n + write_varint(self.bitmap, &mut buf[n..]);
        let budget = out.len();
        let dst = out
            .get_mut(..n)
            .ok_or(FrameError::TooLarge { budget, needed: n })?;
        dst.copy_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Read an ack from the start of `bytes`; returns it and the bytes it
    /// took. Never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] for truncated, non-canonical or overlong
    /// varints and for counters beyond 24 bits.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), FrameError> {
        let (below, n) = read_varint(bytes)?;
        let (bitmap, m) = read_varint(&bytes[n..])?;
        let ack = Self { below, bitmap };
        ack.validate()?;
        Ok((ack, n + m))
    }

    /// `below` at most 2^24, and no bitmap bit past [`COUNTER_MAX`].
    fn validate(&self) -> Result<(), FrameError> {
        if self.below > COUNTER_MAX + 1 {
            return Err(FrameError::Malformed("ack counter beyond 24 bits"));
        }
        let room = COUNTER_MAX.saturating_sub(self.below);
        if room < BITMAP_BITS && self.bitmap >> room != 0 {
            return Err(FrameError::Malformed("ack bitmap beyond 24 bits"));
        }
        Ok(())
    }
}

/// Unsigned LEB128 into `out` (at least 5 bytes); returns the length.
fn write_varint(mut v: u32, out: &mut [u8]) -> usize {
    let mut n = 0;
    for slot in out.iter_mut() {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        n += 1;
        if v == 0 {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    n
}

/// Canonical unsigned LEB128 of at most 5 bytes that fits a `u32`.
fn read_varint(bytes: &[u8]) -> Result<(u32, usize), FrameError> {
    let mut v: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        let group = u32::from(b & 0x7f);
        let shift = 7 * i as u32;
        if i == 4 && group > 0x0f {
            return Err(FrameError::Malformed("varint overflows 32 bits"));
        }
        v |= group << shift;
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(FrameError::Malformed("non-canonical varint"));
            }
            return Ok((v, i + 1));
        }
    }
    if bytes.len() >= 5 {
        Err(FrameError::Malformed("varint longer than 5 bytes"))
    } else {
        Err(FrameError::Malformed("truncated varint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_context_acks_in_two_bytes() {
        let mut out = [0u8; ACK_MAX_LEN];
        let n = Ack {
            below: 5,
            bitmap: 0b101,
        }
        .encode(&mut out)
        .unwrap();
        assert_eq!(&out[..n], &[5, 5]);
    }

    #[test]
    fn acks_follows_the_definition() {
        let ack = Ack {
            below: 10,
            bitmap: 0b1001,
        };
        let acked: heapless::Vec<u32, 16> = (0..50).filter(|&c| ack.acks(c)).collect();
        assert_eq!(&acked[..], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14]);
    }

    #[test]
    fn rejects_non_canonical_and_out_of_range() {
        assert!(Ack::decode(&[0x80, 0x00, 0x00]).is_err()); // 0 in two bytes
        assert!(Ack::decode(&[0x80]).is_err()); // truncated
        assert!(Ack::decode(&[0x80, 0x80, 0x80, 0x08, 0x00]).is_ok()); // below = 2^24
        assert!(Ack::decode(&[0x81, 0x80, 0x80, 0x08, 0x00]).is_err()); // 2^24 + 1
        assert!(Ack::decode(&[0x80, 0x80, 0x80, 0x08, 0x01]).is_err()); // bitmap past 24 bits
        assert!(Ack::decode(&[0x00, 0xff, 0xff, 0xff, 0xff, 0x1f]).is_err()); // > u32
        assert!(Ack::decode(&[0x00, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_ok()); // u32::MAX
    }
}
