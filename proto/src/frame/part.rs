//! Down items too large for one answer, carried in parts over successive
//! answers ([`DownItem::Part`]), and the device's progress reported back in
//! its status ([`PartProgress`]).
//!
//! The carried bytes (the *inner item*) are one whole encoded down item,
//! `tag | length | body` exactly as [`ItemWriter`](super::ItemWriter) writes
//! it; only [`Config`](DownItem::Config) and [`Rekey`](DownItem::Rekey) may
//! travel so ([`inner_item`] refuses anything else, parts of parts
//! included). A part says which inner item it belongs to by its id, the
//! CRC-32 (ISO-HDLC, as zlib's) of the inner bytes ([`part_id`]): the sender
//! needs no state, only deterministic inner bytes (the same configuration
//! gives the same bytes, so the same id), and the device resumes from the
//! offset it reports (`Status` flag bit 1).
//!
//! Wire (`proto/FRAMES.md`): Part body `id (4, big-endian) | total (varint)
//! | offset (varint) | data (≥ 1 byte, offset + len ≤ total)`; status
//! progress, after the flags varint when bit 1 is set: `id (4, big-endian)
//! | offset (varint)`. Every part is sealed like any answer, so the id only
//! tells items apart; it is no authenticator.

use super::FrameError;
use super::item::{DownItem, down_tag, parse_down_item, split_item};
use super::varint::{read_varint_u32, varint_len, write_varint};

/// Bytes of a part's id on the wire.
const ID_LEN: usize = 4;

/// What a device has of an item coming in parts: its id and how many of
/// its first bytes arrived (contiguously).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartProgress {
    /// [`part_id`] of the inner item.
    pub id: u32,
    /// Bytes received from its start.
    pub offset: u32,
}

/// The id of an inner item: CRC-32 (ISO-HDLC, reflected polynomial
/// `0xEDB88320`, as zlib and Ethernet) of its encoded bytes. Table-free:
/// items are small and this runs once per answer.
#[must_use]
pub fn part_id(inner: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in inner {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Body bytes of a part.
pub(super) const fn part_body_len(total: u32, offset: u32, data_len: usize) -> usize {
    ID_LEN + varint_len(total as u64) + varint_len(offset as u64) + data_len
}

/// Write a part's body at the start of `out`.
pub(super) fn write_part_body(
    id: u32,
    total: u32,
    offset: u32,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    if data.is_empty() || u64::from(offset) + data.len() as u64 > u64::from(total) {
        return Err(FrameError::InvalidParameter("part outside its item"));
    }
    let needed = part_body_len(total, offset, data.len());
    let budget = out.len();
    let out = out
        .get_mut(..needed)
        .ok_or(FrameError::TooLarge { budget, needed })?;
    out[..ID_LEN].copy_from_slice(&id.to_be_bytes());
    let mut n = ID_LEN;
    n += write_varint(u64::from(total), &mut out[n..])?;
    n += write_varint(u64::from(offset), &mut out[n..])?;
    out[n..].copy_from_slice(data);
    Ok(needed)
}

/// Read a part's body.
pub(super) fn read_part_body(body: &[u8]) -> Result<DownItem<'_>, FrameError> {
    let (id, rest) = read_id(body, "part truncated")?;
    let (total, a) = read_varint_u32(rest)?;
    let (offset, b) = read_varint_u32(&rest[a..])?;
    let data = &rest[a + b..];
    if data.is_empty() || u64::from(offset) + data.len() as u64 > u64::from(total) {
        return Err(FrameError::Malformed("part outside its item"));
    }
    Ok(DownItem::Part {
        id,
        total,
        offset,
        data,
    })
}

fn read_id<'b>(bytes: &'b [u8], what: &'static str) -> Result<(u32, &'b [u8]), FrameError> {
    let (id, rest) = bytes
        .split_at_checked(ID_LEN)
        .ok_or(FrameError::Malformed(what))?;
    let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    Ok((id, rest))
}

/// Bytes of a status's progress (after its flags).
pub(super) const fn progress_len(p: &PartProgress) -> usize {
    ID_LEN + varint_len(p.offset as u64)
}

/// Write a status's progress at the start of `out`.
pub(super) fn write_progress(p: &PartProgress, out: &mut [u8]) -> Result<usize, FrameError> {
    let budget = out.len();
    let needed = progress_len(p);
    let dst = out
        .get_mut(..ID_LEN)
        .ok_or(FrameError::TooLarge { budget, needed })?;
    dst.copy_from_slice(&p.id.to_be_bytes());
    Ok(ID_LEN + write_varint(u64::from(p.offset), &mut out[ID_LEN..])?)
}

/// Read a status's progress; returns it and the bytes it took.
pub(super) fn read_progress(bytes: &[u8]) -> Result<(PartProgress, usize), FrameError> {
    let (id, rest) = read_id(bytes, "status progress truncated")?;
    let (offset, n) = read_varint_u32(rest)?;
    Ok((PartProgress { id, offset }, ID_LEN + n))
}

/// The most data bytes a part at `offset` of an inner item of `total`
/// bytes can carry within `room` bytes (0 if none fit).
#[must_use]
pub fn part_room(total: u32, offset: u32, room: usize) -> usize {
    let fixed = part_body_len(total, offset, 0);
    let left = total.saturating_sub(offset) as usize;
    let mut d = room
        .saturating_sub(1 + fixed + varint_len(room as u64))
        .min(left);
    while d > 0 && 1 + varint_len((fixed + d) as u64) + fixed + d > room {
        d -= 1;
    }
    d
}

/// The next part of `inner` to send within `room` bytes: from the device's
/// reported `progress` when it is of this item (same id) and short of its
/// end, else from the start. `None` when not one data byte fits, or
/// `inner` is empty or longer than `u32::MAX`.
#[must_use]
pub fn next_part(
    inner: &[u8],
    progress: Option<PartProgress>,
    room: usize,
) -> Option<DownItem<'_>> {
    let total = u32::try_from(inner.len()).ok().filter(|&t| t > 0)?;
    let id = part_id(inner);
    let offset = progress
        .filter(|p| p.id == id && p.offset < total)
        .map_or(0, |p| p.offset);
    let d = part_room(total, offset, room);
    if d == 0 {
        return None;
    }
    let start = offset as usize;
    Some(DownItem::Part {
        id,
        total,
        offset,
        data: &inner[start..start + d],
    })
}

/// Decode reassembled inner bytes: exactly one [`Config`](DownItem::Config)
/// or [`Rekey`](DownItem::Rekey) item, nothing before or after it.
///
/// # Errors
/// [`FrameError::Malformed`] if the bytes are not one such item (another
/// tag, a part of parts, trailing bytes, a body that does not decode).
pub fn inner_item(bytes: &[u8]) -> Result<DownItem<'_>, FrameError> {
    let (tag, body, taken) = split_item(bytes)?;
    if taken != bytes.len() {
        return Err(FrameError::Malformed(
            "bytes after the item carried in parts",
        ));
    }
    if tag != down_tag::CONFIG && tag != down_tag::REKEY {
        return Err(FrameError::Malformed(
            "only Config and Rekey items travel in parts",
        ));
    }
    parse_down_item(tag, body)?.ok_or(FrameError::Malformed("unknown item carried in parts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The CRC-32/ISO-HDLC check value.
        assert_eq!(part_id(b"123456789"), 0xCBF4_3926);
        assert_eq!(part_id(b""), 0);
    }

    #[test]
    fn room_is_exact_at_the_edges() {
        // 1 tag + 1 len + 4 id + 1 total + 1 offset = 8 bytes of overhead.
        assert_eq!(part_room(100, 0, 8), 0);
        assert_eq!(part_room(100, 0, 9), 1);
        assert_eq!(part_room(100, 0, 35), 27);
        assert_eq!(part_room(100, 90, 35), 10);
        assert_eq!(part_room(100, 100, 35), 0);
    }
}
