//! Reassembly of records that travel as fragments (`UpItem::Fragment`):
//! pure, so the store runs it inside the frame's transaction and property
//! tests and the fuzz target run it alone.
//!
//! A record is identified by its `seq`; a [`Partial`] keeps the bytes that
//! arrived as disjoint pieces (overlapping and adjacent fragments are
//! merged), and the record is complete once every byte `0 .. total_len` is
//! there. The receiver rules of `proto/FRAMES.md`:
//!
//! - every fragment of a record names the same `at_ms`, class and total
//!   length, and overlapping fragments agree byte for byte, else
//!   [`Refusal::Conflict`] (the whole frame is refused: nothing stored, no
//!   ack);
//! - a record longer than [`FragmentLimits::max_record_bytes`] is refused
//!   ([`Refusal::RecordTooLarge`]), and so is a frame that would leave more
//!   than [`FragmentLimits::max_pending_bytes`] of incomplete records for
//!   its device ([`Refusal::PendingFull`], checked by the store);
//! - a completed record is checked exactly as a whole one
//!   ([`crate::decode::check_record`]).

use std::collections::BTreeMap;

use flotta_proto::record::RecordClass;

/// One fragment of a record, as a frame carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFragment {
    /// The record's sequence number.
    pub seq: u64,
    /// The record's time (device clock, ms since the Unix epoch).
    pub at_ms: u64,
    /// The record's class.
    pub class: RecordClass,
    /// Length of the whole record.
    pub total_len: u32,
    /// Where `data` starts in it.
    pub offset: u32,
    /// The fragment's bytes (at least one, within the record).
    pub data: Vec<u8>,
}

/// Bounds of reassembly (configuration keys `frame_max_record_bytes` and
/// `frame_max_pending_bytes_per_device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentLimits {
    /// Longest record reassembled.
    pub max_record_bytes: u32,
    /// Most bytes of incomplete records kept per device.
    pub max_pending_bytes: u64,
}

/// Why a frame's fragments (and so the frame) are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A fragment disagrees with bytes or header fields received before.
    #[error("fragment of record seq {seq} conflicts with the bytes received before")]
    Conflict {
        /// The record.
        seq: u64,
    },
    /// The record is longer than the server reassembles.
    #[error("record seq {seq} of {total_len} bytes exceeds frame_max_record_bytes ({max})")]
    RecordTooLarge {
        /// The record.
        seq: u64,
        /// Its announced length.
        total_len: u32,
        /// The limit.
        max: u32,
    },
    /// The device would have more incomplete bytes pending than allowed.
    #[error(
        "{bytes} bytes of incomplete records would exceed frame_max_pending_bytes_per_device ({max})"
    )]
    PendingFull {
        /// Bytes that would be pending.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A reassembled record is not a valid record.
    #[error("reassembled record: {0}")]
    InvalidRecord(String),
}

/// The bytes of one record received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    /// The record's sequence number.
    pub seq: u64,
    /// Its time.
    pub at_ms: u64,
    /// Its class.
    pub class: RecordClass,
    /// Its length.
    pub total_len: u32,
    /// Disjoint, non-adjacent pieces by start offset.
    pieces: BTreeMap<u32, Vec<u8>>,
}

impl Partial {
    /// An empty record of `total_len` bytes (checked against `limits`).
    ///
    /// # Errors
    /// [`Refusal::RecordTooLarge`].
    pub fn new(
        seq: u64,
        at_ms: u64,
        class: RecordClass,
        total_len: u32,
        limits: FragmentLimits,
    ) -> Result<Self, Refusal> {
        if total_len > limits.max_record_bytes {
            return Err(Refusal::RecordTooLarge {
                seq,
                total_len,
                max: limits.max_record_bytes,
            });
        }
        Ok(Self {
            seq,
            at_ms,
            class,
            total_len,
            pieces: BTreeMap::new(),
        })
    }

    /// The record a first fragment starts.
    ///
    /// # Errors
    /// As [`Partial::new`] and [`Partial::add`].
    pub fn from_fragment(f: &NewFragment, limits: FragmentLimits) -> Result<Self, Refusal> {
        let mut p = Self::new(f.seq, f.at_ms, f.class, f.total_len, limits)?;
        p.add(f)?;
        Ok(p)
    }

    /// Add a fragment: same record head, agreeing with every byte already
    /// here; merged with the pieces it overlaps or touches. On error
    /// nothing changes.
    ///
    /// # Errors
    /// [`Refusal::Conflict`].
    pub fn add(&mut self, f: &NewFragment) -> Result<(), Refusal> {
        let conflict = Refusal::Conflict { seq: self.seq };
        if f.seq != self.seq
            || f.at_ms != self.at_ms
            || f.class != self.class
            || f.total_len != self.total_len
        {
            return Err(conflict);
        }
        let start = f.offset;
        let end = u64::from(f.offset) + f.data.len() as u64;
        if f.data.is_empty() || end > u64::from(self.total_len) {
            return Err(conflict);
        }
        // Pieces that overlap or touch [start, end].
        let touching: Vec<u32> = self
            .pieces
            .range(..=u32::try_from(end).unwrap_or(u32::MAX))
            .filter(|(s, d)| u64::from(**s) + d.len() as u64 >= u64::from(start))
            .map(|(s, _)| *s)
            .collect();
        for s in &touching {
            let piece = &self.pieces[s];
            let (ps, pe) = (u64::from(*s), u64::from(*s) + piece.len() as u64);
            let (lo, hi) = (ps.max(u64::from(start)), pe.min(end));
            if lo < hi {
                let theirs = &piece[(lo - ps) as usize..(hi - ps) as usize];
                let ours =
                    &f.data[(lo - u64::from(start)) as usize..(hi - u64::from(start)) as usize];
                if theirs != ours {
                    return Err(conflict);
                }
            }
        }
        let merged_start = touching.first().map_or(start, |s| (*s).min(start));
        let merged_end = touching
            .iter()
            .map(|s| u64::from(*s) + self.pieces[s].len() as u64)
            .fold(end, u64::max);
        let mut merged = vec![0u8; (merged_end - u64::from(merged_start)) as usize];
        for s in touching {
            if let Some(piece) = self.pieces.remove(&s) {
                let at = (s - merged_start) as usize;
                merged[at..at + piece.len()].copy_from_slice(&piece);
            }
        }
        let at = (start - merged_start) as usize;
        merged[at..at + f.data.len()].copy_from_slice(&f.data);
        self.pieces.insert(merged_start, merged);
        Ok(())
    }

    /// Whether every byte has arrived.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.pieces
            .get(&0)
            .is_some_and(|p| p.len() as u64 == u64::from(self.total_len))
    }

    /// Bytes received so far.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.pieces.values().map(|p| p.len() as u64).sum()
    }

    /// The pieces, `(start, bytes)`, ascending and disjoint (what the store
    /// keeps).
    pub fn pieces(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.pieces.iter().map(|(s, d)| (*s, d.as_slice()))
    }

    /// The whole record's bytes, once complete.
    #[must_use]
    pub fn into_record(mut self) -> Option<Vec<u8>> {
        if !self.is_complete() {
            return None;
        }
        Some(self.pieces.remove(&0).unwrap_or_default())
    }
}

#[cfg(test)]
#[path = "reassembly_tests.rs"]
mod tests;
