//! Canonical unsigned LEB128 varints for the plaintext items of a frame
//! (`item.rs`): 1 byte below 128, at most 10 for a `u64`.
//!
//! Canonical means no redundant trailing zero groups, so every value has
//! exactly one encoding; decoding refuses the others and never panics.

use super::FrameError;

/// The longest encoding of a `u64`.
pub const VARINT_MAX: usize = 10;

/// Bytes `v` takes encoded.
#[must_use]
pub const fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    if bits == 0 { 1 } else { bits.div_ceil(7) }
}

/// Write `v` at the start of `out`; returns the bytes written.
///
/// # Errors
/// [`FrameError::TooLarge`] if `out` is shorter than [`varint_len`].
pub fn write_varint(mut v: u64, out: &mut [u8]) -> Result<usize, FrameError> {
    let needed = varint_len(v);
    let budget = out.len();
    let dst = out
        .get_mut(..needed)
        .ok_or(FrameError::TooLarge { budget, needed })?;
    for (i, slot) in dst.iter_mut().enumerate() {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        *slot = if i + 1 == needed { low } else { low | 0x80 };
    }
    Ok(needed)
}

/// Read a canonical varint from the start of `bytes`; returns it and the
/// bytes it took.
///
/// # Errors
/// [`FrameError::Malformed`] if truncated, non-canonical or beyond 64 bits.
pub fn read_varint(bytes: &[u8]) -> Result<(u64, usize), FrameError> {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(VARINT_MAX) {
        let group = u64::from(b & 0x7f);
        if i == VARINT_MAX - 1 && group > 1 {
            return Err(FrameError::Malformed("varint overflows 64 bits"));
        }
        v |= group << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(FrameError::Malformed("non-canonical varint"));
            }
            return Ok((v, i + 1));
        }
    }
    if bytes.len() >= VARINT_MAX {
        Err(FrameError::Malformed("varint longer than 10 bytes"))
    } else {
        Err(FrameError::Malformed("truncated varint"))
    }
}

/// Read a varint that must fit a `u32`.
///
/// # Errors
/// As [`read_varint`], and [`FrameError::Malformed`] above `u32::MAX`.
pub(crate) fn read_varint_u32(bytes: &[u8]) -> Result<(u32, usize), FrameError> {
    let (v, n) = read_varint(bytes)?;
    let v = u32::try_from(v).map_err(|_| FrameError::Malformed("varint overflows 32 bits"))?;
    Ok((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_roundtrip_with_their_lengths() {
        for (v, len) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            let mut buf = [0u8; VARINT_MAX];
            assert_eq!(write_varint(v, &mut buf), Ok(len), "{v}");
            assert_eq!(varint_len(v), len);
            assert_eq!(read_varint(&buf[..len]), Ok((v, len)));
        }
    }

    #[test]
    fn refuses_non_canonical_truncated_and_overlong() {
        assert!(read_varint(&[0x80, 0x00]).is_err());
        assert!(read_varint(&[0x80]).is_err());
        assert!(read_varint(&[]).is_err());
        assert!(read_varint(&[0xff; 10]).is_err());
        let mut max = [0xffu8; 10];
        max[9] = 0x01;
        assert_eq!(read_varint(&max), Ok((u64::MAX, 10)));
        max[9] = 0x02;
        assert!(read_varint(&max).is_err());
        assert!(write_varint(300, &mut [0u8; 1]).is_err());
        assert!(read_varint_u32(&[0x80, 0x80, 0x80, 0x80, 0x10]).is_err());
    }
}
