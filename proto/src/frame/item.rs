//! What a sealed frame's plaintext says: a sequence of items
//! `tag (1) | length (varint) | body`, in both directions.
//!
//! Uplink items ([`UpItem`]): the device's [`Status`](UpItem::Status) (its
//! configuration version and counter low-water mark), whole queued
//! [records](UpItem::Record) and [fragments](UpItem::Fragment) of records too
//! big for one frame. Downlink items ([`DownItem`]): the cumulative
//! [`Ack`], a [configuration](DownItem::Config) that fits, a marker that one
//! is [pending](DownItem::ConfigPending) (fetch it over TLS), and a new key
//! epoch ([`Rekey`](DownItem::Rekey)), sealed under the current one, and a
//! [part](DownItem::Part) of one of those too large for one answer
//! (`part.rs`).
//!
//! Unknown tags are skipped by their length, so a newer peer can add items
//! an older one ignores. Decoding never panics and borrows from the
//! plaintext (no allocation). The byte layouts are in `proto/FRAMES.md`.

use core::fmt;

use super::FrameError;
use super::ack::Ack;
use super::context::{KeyId, MASTER_SECRET_LEN};
use super::part::{
    PartProgress, part_body_len, progress_len, read_part_body, read_progress, write_part_body,
    write_progress,
};
use super::varint::{read_varint, read_varint_u32, varint_len, write_varint};

/// Item tags of uplink plaintexts.
pub mod up_tag {
    /// [`UpItem::Status`](super::UpItem::Status).
    pub const STATUS: u8 = 0x01;
    /// [`UpItem::Record`](super::UpItem::Record).
    pub const RECORD: u8 = 0x02;
    /// [`UpItem::Fragment`](super::UpItem::Fragment).
    pub const FRAGMENT: u8 = 0x03;
}

/// Item tags of downlink plaintexts.
pub mod down_tag {
    /// [`DownItem::Ack`](super::DownItem::Ack).
    pub const ACK: u8 = 0x01;
    /// [`DownItem::Config`](super::DownItem::Config).
    pub const CONFIG: u8 = 0x02;
    /// [`DownItem::ConfigPending`](super::DownItem::ConfigPending).
    pub const CONFIG_PENDING: u8 = 0x03;
    /// [`DownItem::Rekey`](super::DownItem::Rekey).
    pub const REKEY: u8 = 0x04;
    /// [`DownItem::Part`](super::DownItem::Part).
    pub const PART: u8 = 0x05;
}

/// The longest configuration version string an item carries.
pub const VERSION_MAX: usize = 64;
/// The longest master salt a [`DownItem::Rekey`] carries.
pub const SALT_MAX: usize = 32;

/// Where a queued record sits in the device's sequence, when it was made and
/// its class (`RecordClass::index`: 0 heartbeat, 1 log, 2 event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordHead {
    /// The device's sequence number (the server deduplicates by it).
    pub seq: u64,
    /// Device clock, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Record class index.
    pub class: u8,
}

impl RecordHead {
    const fn len(&self) -> usize {
        varint_len(self.seq) + varint_len(self.at_ms) + 1
    }

    fn write(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let mut n = write_varint(self.seq, out)?;
        n += write_varint(self.at_ms, rest(out, n)?)?;
        Ok(n + put(out, n, &[self.class])?)
    }

    fn read(bytes: &[u8]) -> Result<(Self, usize), FrameError> {
        let (seq, a) = read_varint(bytes)?;
        let (at_ms, b) = read_varint(&bytes[a..])?;
        let class = *bytes
            .get(a + b)
            .ok_or(FrameError::Malformed("record head truncated"))?;
        Ok((Self { seq, at_ms, class }, a + b + 1))
    }
}

/// Status flags bit 0: the device wants an answer to this frame.
const STATUS_ACK_WANTED: u64 = 1;
/// Status flags bit 1: an item in parts is incomplete; its
/// [`PartProgress`] follows the flags.
const STATUS_PARTIAL: u64 = 2;

/// One uplink item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpItem<'a> {
    /// First in every uplink: the configuration version the device applies
    /// (empty: none) and its low-water mark, the lowest uplink counter it
    /// still waits an ack for (everything below is acked or given up: the
    /// server may settle it).
    Status {
        /// Applied configuration version, at most [`VERSION_MAX`] bytes.
        config_version: &'a str,
        /// Lowest counter still awaited.
        low_water: u32,
        /// The device asks for an answer to this frame even if it carries
        /// nothing but the ack (links with few downlinks, where the server
        /// otherwise answers only with configuration or keys). On the wire:
        /// a flags varint after `low_water`, bit 0, present only when
        /// non-zero (decoders before it ignore it).
        ack_wanted: bool,
        /// An item coming in parts is incomplete: its id and the bytes
        /// received. On the wire: flags bit 1, then `id (4) | offset
        /// (varint)` after the flags (`part.rs`).
        partial: Option<PartProgress>,
    },
    /// A whole record; `payload` is its postcard `Payload` as queued.
    Record {
        /// Sequence, time and class.
        head: RecordHead,
        /// The record's bytes.
        payload: &'a [u8],
    },
    /// Bytes `offset .. offset + data.len()` of a record of `total_len`
    /// bytes; the receiver stores it when every byte has arrived.
    Fragment {
        /// Sequence, time and class of the whole record.
        head: RecordHead,
        /// Length of the whole record.
        total_len: u32,
        /// Where `data` starts in it.
        offset: u32,
        /// The fragment's bytes.
        data: &'a [u8],
    },
}

/// How a [`DownItem::Config`] body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigEncoding {
    /// UTF-8 JSON of Flotta's `device-configuration-message`.
    Json = 0,
    /// The same JSON, zlib-compressed (RFC 1950).
    ZlibJson = 1,
}

/// One downlink item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DownItem<'a> {
    /// What the server has stored of the device's uplink frames.
    Ack(Ack),
    /// The device's desired configuration, when its version differs from
    /// the one in the uplink's status and it fits the frame.
    Config {
        /// Version to echo in later statuses.
        version: &'a str,
        /// How `body` is encoded.
        encoding: ConfigEncoding,
        /// The configuration.
        body: &'a [u8],
    },
    /// A newer configuration exists but does not fit: fetch it over TLS at
    /// the next IP window.
    ConfigPending {
        /// The version waiting.
        version: &'a str,
    },
    /// The next key epoch, sent sealed under the current one. The device
    /// switches to it; the server accepts the old epoch until it sees the new.
    Rekey {
        /// Key id of the new context (may equal the old one).
        key_id: KeyId,
        /// The new epoch.
        epoch: u32,
        /// The new master secret.
        master_secret: &'a [u8; MASTER_SECRET_LEN],
        /// The new master salt, at most [`SALT_MAX`] bytes.
        salt: &'a [u8],
    },
    /// Bytes `offset .. offset + data.len()` of an encoded `Config` or
    /// `Rekey` item of `total` bytes too large for one answer (`part.rs`).
    Part {
        /// [`part_id`](super::part_id) of the whole inner item.
        id: u32,
        /// Bytes of the inner item.
        total: u32,
        /// Where `data` starts in it.
        offset: u32,
        /// The part's bytes (at least one).
        data: &'a [u8],
    },
}

impl fmt::Debug for DownItem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ack(a) => f.debug_tuple("Ack").field(a).finish(),
            Self::Config {
                version,
                encoding,
                body,
            } => f
                .debug_struct("Config")
                .field("version", version)
                .field("encoding", encoding)
                .field("body_len", &body.len())
                .finish(),
            Self::ConfigPending { version } => f
                .debug_struct("ConfigPending")
                .field("version", version)
                .finish(),
            Self::Rekey { key_id, epoch, .. } => f
                .debug_struct("Rekey")
                .field("key_id", key_id)
                .field("epoch", epoch)
                .finish_non_exhaustive(),
            Self::Part {
                id,
                total,
                offset,
                data,
            } => f
                .debug_struct("Part")
                .field("id", id)
                .field("total", total)
                .field("offset", offset)
                .field("data_len", &data.len())
                .finish(),
        }
    }
}

const fn too_large(budget: usize, needed: usize) -> FrameError {
    FrameError::TooLarge { budget, needed }
}

fn rest(out: &mut [u8], at: usize) -> Result<&mut [u8], FrameError> {
    let len = out.len();
    out.get_mut(at..).ok_or(too_large(len, at))
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<usize, FrameError> {
    let len = out.len();
    out.get_mut(at..at + bytes.len())
        .ok_or(too_large(len, at + bytes.len()))?
        .copy_from_slice(bytes);
    Ok(bytes.len())
}

fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn write_str(s: &str, out: &mut [u8]) -> Result<usize, FrameError> {
    if s.len() > VERSION_MAX {
        return Err(FrameError::InvalidParameter("version longer than 64 bytes"));
    }
    let n = write_varint(s.len() as u64, out)?;
    Ok(n + put(out, n, s.as_bytes())?)
}

fn read_str(bytes: &[u8]) -> Result<(&str, usize), FrameError> {
    let (len, n) = read_varint(bytes)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > VERSION_MAX {
        return Err(FrameError::Malformed("version longer than 64 bytes"));
    }
    let raw = bytes
        .get(n..n.saturating_add(len))
        .ok_or(FrameError::Malformed("version truncated"))?;
    let s = core::str::from_utf8(raw).map_err(|_| FrameError::Malformed("version not UTF-8"))?;
    Ok((s, n + len))
}

/// An item of either direction: its tag, body length and body encoder.
pub trait WireItem {
    /// The item's tag.
    fn tag(&self) -> u8;
    /// Bytes of the body.
    fn body_len(&self) -> usize;
    /// Write the body (exactly [`body_len`](Self::body_len) bytes).
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] if `out` is too short;
    /// [`FrameError::InvalidParameter`] for out-of-range fields.
    fn write_body(&self, out: &mut [u8]) -> Result<usize, FrameError>;

    /// Bytes of the whole item: tag, length and body.
    fn encoded_len(&self) -> usize {
        let body = self.body_len();
        1 + varint_len(body as u64) + body
    }

    /// Write the whole item at the start of `out`; returns its length.
    ///
    /// # Errors
    /// As [`write_body`](Self::write_body).
    fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let needed = self.encoded_len();
        if out.len() < needed {
            return Err(too_large(out.len(), needed));
        }
        out[0] = self.tag();
        let body = self.body_len();
        let n = 1 + write_varint(body as u64, &mut out[1..])?;
        let written = self.write_body(&mut out[n..n + body])?;
        debug_assert_eq!(written, body);
        Ok(needed)
    }
}

impl WireItem for UpItem<'_> {
    fn tag(&self) -> u8 {
        match self {
            Self::Status { .. } => up_tag::STATUS,
            Self::Record { .. } => up_tag::RECORD,
            Self::Fragment { .. } => up_tag::FRAGMENT,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Self::Status {
                config_version,
                low_water,
                ack_wanted,
                partial,
            } => {
                str_len(config_version)
                    + varint_len(u64::from(*low_water))
                    + usize::from(*ack_wanted || partial.is_some())
                    + partial.as_ref().map_or(0, progress_len)
            }
            Self::Record { head, payload } => head.len() + payload.len(),
            Self::Fragment {
                head,
                total_len,
                offset,
                data,
            } => {
                head.len()
                    + varint_len(u64::from(*total_len))
                    + varint_len(u64::from(*offset))
                    + data.len()
            }
        }
    }

    fn write_body(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        match self {
            Self::Status {
                config_version,
                low_water,
                ack_wanted,
                partial,
            } => {
                let mut n = write_str(config_version, out)?;
                n += write_varint(u64::from(*low_water), rest(out, n)?)?;
                let flags = if *ack_wanted { STATUS_ACK_WANTED } else { 0 }
                    | if partial.is_some() { STATUS_PARTIAL } else { 0 };
                if flags != 0 {
                    n += write_varint(flags, rest(out, n)?)?;
                }
                if let Some(p) = partial {
                    n += write_progress(p, rest(out, n)?)?;
                }
                Ok(n)
            }
            Self::Record { head, payload } => {
                let n = head.write(out)?;
                Ok(n + put(out, n, payload)?)
            }
            Self::Fragment {
                head,
                total_len,
                offset,
                data,
            } => {
                let end = u64::from(*offset) + data.len() as u64;
                if data.is_empty() || end > u64::from(*total_len) {
                    return Err(FrameError::InvalidParameter("fragment outside its record"));
                }
                let mut n = head.write(out)?;
                n += write_varint(u64::from(*total_len), rest(out, n)?)?;
                n += write_varint(u64::from(*offset), rest(out, n)?)?;
                Ok(n + put(out, n, data)?)
            }
        }
    }
}

impl WireItem for DownItem<'_> {
    fn tag(&self) -> u8 {
        match self {
            Self::Ack(_) => down_tag::ACK,
            Self::Config { .. } => down_tag::CONFIG,
            Self::ConfigPending { .. } => down_tag::CONFIG_PENDING,
            Self::Rekey { .. } => down_tag::REKEY,
            Self::Part { .. } => down_tag::PART,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Self::Ack(a) => varint_len(u64::from(a.below)) + varint_len(u64::from(a.bitmap)),
            Self::Config { version, body, .. } => str_len(version) + 1 + body.len(),
            Self::ConfigPending { version } => str_len(version),
            Self::Rekey { salt, .. } => 4 + 4 + MASTER_SECRET_LEN + 1 + salt.len(),
            Self::Part {
                total,
                offset,
                data,
                ..
            } => part_body_len(*total, *offset, data.len()),
        }
    }

    fn write_body(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        match self {
            Self::Ack(a) => a.encode(out),
            Self::Config {
                version,
                encoding,
                body,
            } => {
                let mut n = write_str(version, out)?;
                n += put(out, n, &[*encoding as u8])?;
                Ok(n + put(out, n, body)?)
            }
            Self::ConfigPending { version } => write_str(version, out),
            Self::Rekey {
                key_id,
                epoch,
                master_secret,
                salt,
            } => {
                if salt.len() > SALT_MAX {
                    return Err(FrameError::InvalidParameter("salt longer than 32 bytes"));
                }
                let mut n = put(out, 0, &key_id.0)?;
                n += put(out, n, &epoch.to_be_bytes())?;
                n += put(out, n, &master_secret[..])?;
                n += put(out, n, &[salt.len() as u8])?;
                Ok(n + put(out, n, salt)?)
            }
            Self::Part {
                id,
                total,
                offset,
                data,
            } => write_part_body(*id, *total, *offset, data, out),
        }
    }
}

/// Split one item off the front: `(tag, body, bytes taken)`.
pub(super) fn split_item(bytes: &[u8]) -> Result<(u8, &[u8], usize), FrameError> {
    let (&tag, after) = bytes
        .split_first()
        .ok_or(FrameError::Malformed("empty item"))?;
    let (len, n) = read_varint(after)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let body = after
        .get(n..n.saturating_add(len))
        .ok_or(FrameError::Malformed("item longer than the frame"))?;
    Ok((tag, body, 1 + n + len))
}

fn parse_up(tag: u8, body: &[u8]) -> Result<Option<UpItem<'_>>, FrameError> {
    Ok(Some(match tag {
        up_tag::STATUS => {
            let (config_version, n) = read_str(body)?;
            let (low_water, m) = read_varint_u32(&body[n..])?;
            // Flags: absent means none; unknown bits, and bytes after what
            // the known ones announce, are ignored (later versions may add
            // some).
            let (flags, f) = match &body[n + m..] {
                [] => (0, 0),
                rest => read_varint(rest)?,
            };
            let partial = match flags & STATUS_PARTIAL {
                0 => None,
                _ => Some(read_progress(&body[n + m + f..])?.0),
            };
            UpItem::Status {
                config_version,
                low_water,
                ack_wanted: flags & STATUS_ACK_WANTED != 0,
                partial,
            }
        }
        up_tag::RECORD => {
            let (head, n) = RecordHead::read(body)?;
            UpItem::Record {
                head,
                payload: &body[n..],
            }
        }
        up_tag::FRAGMENT => {
            let (head, a) = RecordHead::read(body)?;
            let (total_len, b) = read_varint_u32(&body[a..])?;
            let (offset, c) = read_varint_u32(&body[a + b..])?;
            let data = &body[a + b + c..];
            if data.is_empty() || u64::from(offset) + data.len() as u64 > u64::from(total_len) {
                return Err(FrameError::Malformed("fragment outside its record"));
            }
            UpItem::Fragment {
                head,
                total_len,
                offset,
                data,
            }
        }
        _ => return Ok(None),
    }))
}

/// Parse one down item's body by its tag (`None`: an unknown tag).
pub(super) fn parse_down_item(tag: u8, body: &[u8]) -> Result<Option<DownItem<'_>>, FrameError> {
    Ok(Some(match tag {
        down_tag::ACK => DownItem::Ack(Ack::decode(body)?.0),
        down_tag::CONFIG => {
            let (version, n) = read_str(body)?;
            let encoding = match body.get(n) {
                Some(0) => ConfigEncoding::Json,
                Some(1) => ConfigEncoding::ZlibJson,
                _ => return Err(FrameError::Malformed("unknown configuration encoding")),
            };
            DownItem::Config {
                version,
                encoding,
                body: &body[n + 1..],
            }
        }
        down_tag::CONFIG_PENDING => DownItem::ConfigPending {
            version: read_str(body)?.0,
        },
        down_tag::REKEY => {
            let fixed = 4 + 4 + MASTER_SECRET_LEN + 1;
            let head = body
                .get(..fixed)
                .ok_or(FrameError::Malformed("rekey truncated"))?;
            let salt_len = usize::from(head[fixed - 1]);
            if salt_len > SALT_MAX || body.len() != fixed + salt_len {
                return Err(FrameError::Malformed("rekey salt length"));
            }
            let key_id = KeyId([head[0], head[1], head[2], head[3]]);
            let epoch = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            let master_secret: &[u8; MASTER_SECRET_LEN] = head[8..8 + MASTER_SECRET_LEN]
                .try_into()
                .map_err(|_| FrameError::Malformed("rekey truncated"))?;
            DownItem::Rekey {
                key_id,
                epoch,
                master_secret,
                salt: &body[fixed..],
            }
        }
        down_tag::PART => read_part_body(body)?,
        _ => return Ok(None),
    }))
}

/// An iterator over the items of a plaintext: yields each known item,
/// skips unknown tags, and ends after the first error (which it yields).
#[derive(Debug, Clone)]
pub struct Items<'a, T> {
    rest: &'a [u8],
    parse: fn(u8, &'a [u8]) -> Result<Option<T>, FrameError>,
}

/// The items of an uplink plaintext.
#[must_use]
pub fn up_items(plaintext: &[u8]) -> Items<'_, UpItem<'_>> {
    Items {
        rest: plaintext,
        parse: parse_up,
    }
}

/// The items of a downlink plaintext.
#[must_use]
pub fn down_items(plaintext: &[u8]) -> Items<'_, DownItem<'_>> {
    Items {
        rest: plaintext,
        parse: parse_down_item,
    }
}

impl<'a, T> Iterator for Items<'a, T> {
    type Item = Result<T, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let parsed = split_item(self.rest).and_then(|(tag, body, taken)| {
                self.rest = &self.rest[taken..];
                (self.parse)(tag, body)
            });
            match parsed {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(e) => {
                    self.rest = &[];
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Writes items one after another into a plaintext buffer (the frame's
/// budget minus its overhead).
#[derive(Debug)]
pub struct ItemWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> ItemWriter<'b> {
    /// A writer filling `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes still free.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is written yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `item`; on error nothing is written.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] if it does not fit; the item's own errors.
    pub fn push(&mut self, item: &impl WireItem) -> Result<(), FrameError> {
        // A failed write leaves at most a partial item past `len`: it is
        // not part of the output.
        let n = item.encode(&mut self.buf[self.len..])?;
        self.len += n;
        Ok(())
    }

    /// The plaintext written.
    #[must_use]
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The most data bytes a [`UpItem::Fragment`] of `head` at `offset` in a
/// record of `total_len` can carry within `room` bytes (0 if none fit).
#[must_use]
pub fn fragment_room(head: &RecordHead, total_len: u32, offset: u32, room: usize) -> usize {
    let fixed = head.len() + varint_len(u64::from(total_len)) + varint_len(u64::from(offset));
    let left = (total_len - offset.min(total_len)) as usize;
    // body = fixed + d; the item is 1 + varint_len(body) + body.
    let mut d = room
        .saturating_sub(1 + fixed + varint_len(room as u64))
        .min(left);
    while d > 0 && 1 + varint_len((fixed + d) as u64) + fixed + d > room {
        d -= 1;
    }
    d
}
