//! Filling one frame's plaintext from a list of queued records, late (at
//! send time, with the budget of the link as it is now): the device's
//! status first, then whole records in order, and a record that fits no
//! frame split into fragments.
//!
//! [`pack`] is pure and allocation-free: the caller keeps a [`Cursor`] into
//! its records and calls it once per frame until the cursor reaches the end.
//! A record that would fit an empty frame is never fragmented: it waits for
//! the next frame. A fragment is at least [`MIN_FRAGMENT`] bytes unless it is
//! the record's tail.

use super::FrameError;
use super::item::{ItemWriter, RecordHead, UpItem, WireItem, fragment_room};

/// Smallest fragment worth a frame's bytes (a record's last bytes excepted).
pub const MIN_FRAGMENT: usize = 8;

/// A queued record to pack: borrowed, in sequence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackRecord<'a> {
    /// Sequence, time and class.
    pub head: RecordHead,
    /// The record's bytes (postcard `Payload`).
    pub payload: &'a [u8],
}

/// Where packing goes on: record `index` of the list, from byte `offset`
/// (non-zero when its earlier bytes went out as fragments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Index of the next record to pack.
    pub index: usize,
    /// Bytes of that record already packed.
    pub offset: u32,
}

/// What one call of [`pack`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    /// Plaintext bytes written to the start of `out`.
    pub len: usize,
    /// Where the next frame starts.
    pub next: Cursor,
    /// Records whose last byte is in this frame (`next.index - from.index`).
    pub completed: usize,
}

/// Pack `status`, then records from `from`, into `out` (whose length is the
/// plaintext budget: the link's frame budget minus the frame overhead).
///
/// # Errors
/// [`FrameError::TooLarge`] if `status` alone does not fit;
/// [`FrameError::InvalidParameter`] if the budget cannot carry even one
/// fragment byte (no progress possible), a record is longer than
/// `u32::MAX` bytes, or `from` is past the records.
pub fn pack(
    out: &mut [u8],
    status: &UpItem<'_>,
    records: &[PackRecord<'_>],
    from: Cursor,
) -> Result<Packed, FrameError> {
    if from.index > records.len() {
        return Err(FrameError::InvalidParameter("cursor past the records"));
    }
    let budget = out.len();
    let mut w = ItemWriter::new(out);
    w.push(status)?;
    let empty_room = budget - w.len();
    let mut cur = from;
    let mut completed = 0;
    let mut packed_any = false;
    while let Some(r) = records.get(cur.index) {
        let total = u32::try_from(r.payload.len())
            .map_err(|_| FrameError::InvalidParameter("record longer than 4 GiB"))?;
        if cur.offset == 0 {
            let whole = UpItem::Record {
                head: r.head,
                payload: r.payload,
            };
            if whole.encoded_len() <= w.remaining() {
                w.push(&whole)?;
                cur = Cursor {
                    index: cur.index + 1,
                    offset: 0,
                };
                completed += 1;
                packed_any = true;
                continue;
            }
            if packed_any && whole.encoded_len() <= empty_room {
                break; // whole in the next frame rather than split
            }
        }
        let offset = cur.offset.min(total);
        let left = (total - offset) as usize;
        let room = fragment_room(&r.head, total, offset, w.remaining());
        if room == 0 || (room < MIN_FRAGMENT && room < left && packed_any) {
            if !packed_any {
                return Err(FrameError::InvalidParameter(
                    "budget too small for one fragment byte",
                ));
            }
            break;
        }
        let start = offset as usize;
        w.push(&UpItem::Fragment {
            head: r.head,
            total_len: total,
            offset,
            data: &r.payload[start..start + room],
        })?;
        packed_any = true;
        if room == left {
            cur = Cursor {
                index: cur.index + 1,
                offset: 0,
            };
            completed += 1;
        } else {
            cur.offset = offset + room as u32;
            break; // the frame is full
        }
    }
    Ok(Packed {
        len: w.len(),
        next: cur,
        completed,
    })
}
