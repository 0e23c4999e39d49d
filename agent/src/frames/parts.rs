//! Reassembling a down item that comes in parts (`DownItem::Part`: a
//! configuration or a `Rekey` too large for one answer, on links without
//! TLS), on disk at `<data_dir>/frame/parts.bin` so a restart resumes it.
//!
//! Rules:
//!
//! - **One item at a time**, known by its id (CRC-32 of its bytes) and
//!   total length; at most [`MAX_TOTAL`] bytes (a larger one is refused
//!   with a warning: the server offers it again, to no avail, until its
//!   operator shrinks it).
//! - **Contiguous.** A part is taken when it starts at or before the end
//!   of what arrived and reaches past it (the same id means the same bytes,
//!   so an overlap is a repeat); anything else is ignored. A part of
//!   another item starting at 0 replaces the one in progress (the server
//!   moved on: a newer configuration, a new epoch).
//! - **Reported.** While incomplete, every status carries `{id, offset}`
//!   ([`Reassembly::progress`]), and the server sends the part from there.
//! - **Once.** When the last byte arrives the state is cleared (the file
//!   removed) and the bytes handed back whole, to be decoded and applied
//!   exactly as the item had come whole (`window.rs`).
//!
//! Format: magic `PRT1`, postcard `{id, total, bytes}`, CRC-32 of both. A
//! missing or damaged file (or one whose bytes overrun its total) is no
//! transfer: it restarts at 0, never a crash.

use std::path::{Path, PathBuf};

use flotta_proto::frame::{PartProgress, part_id};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// The file, relative to the data directory.
pub(crate) const PARTS_FILE: &str = "frame/parts.bin";
const MAGIC: &[u8; 4] = b"PRT1";
/// The largest item taken in parts.
pub(crate) const MAX_TOTAL: u32 = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    id: u32,
    total: u32,
    bytes: Vec<u8>,
}

/// One part as an answer carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartIn {
    /// Id of the whole item.
    pub(crate) id: u32,
    /// Its length.
    pub(crate) total: u32,
    /// Where `data` starts in it.
    pub(crate) offset: u32,
    /// The part's bytes.
    pub(crate) data: Vec<u8>,
}

/// The item in progress, if any.
#[derive(Debug)]
pub(crate) struct Reassembly {
    path: PathBuf,
    state: Option<State>,
}

impl Reassembly {
    /// The transfer stored under `data_dir` (none if missing or damaged).
    pub(crate) fn load(data_dir: &Path) -> Self {
        let path = data_dir.join(PARTS_FILE);
        let state = std::fs::read(&path).ok().and_then(|b| decode(&b));
        Self { path, state }
    }

    /// What to report in the status: the item in progress and the bytes
    /// received.
    pub(crate) fn progress(&self) -> Option<PartProgress> {
        self.state.as_ref().map(|s| PartProgress {
            id: s.id,
            offset: u32::try_from(s.bytes.len()).unwrap_or(u32::MAX),
        })
    }

    /// Take `part`: the whole item's bytes when this was its last part
    /// (the state is then cleared), else `None` (taken or ignored).
    ///
    /// # Errors
    /// The I/O error saving the state (memory is ahead of the disk then,
    /// which only costs a resend after a restart).
    pub(crate) fn accept(&mut self, part: &PartIn) -> std::io::Result<Option<Vec<u8>>> {
        let PartIn {
            id,
            total,
            offset,
            ref data,
        } = *part;
        if total > MAX_TOTAL {
            crate::journal::warn(&format!(
                "an item of {total} bytes comes in parts; more than {MAX_TOTAL} are refused"
            ));
            return Ok(None);
        }
        let (offset, end) = (offset as usize, offset as usize + data.len());
        if end > total as usize || data.is_empty() {
            return Ok(None);
        }
        let same = self
            .state
            .as_ref()
            .is_some_and(|s| s.id == id && s.total == total);
        if !same {
            if offset != 0 {
                return Ok(None);
            }
            self.state = Some(State {
                id,
                total,
                bytes: Vec::with_capacity(total as usize),
            });
        }
        let Some(state) = self.state.as_mut() else {
            return Ok(None);
        };
        let have = state.bytes.len();
        if offset > have || end <= have {
            return Ok(None);
        }
        state.bytes.extend_from_slice(&data[have - offset..]);
        if state.bytes.len() < total as usize {
            self.save()?;
            return Ok(None);
        }
        let done = self.state.take().map(|s| (s.id, s.bytes));
        self.save()?;
        // Parts of two items with the same id and length cannot mix
        // unnoticed: the bytes must be the item the id names.
        Ok(done.and_then(|(id, bytes)| (part_id(&bytes) == id).then_some(bytes)))
    }

    /// Replace the file durably, or remove it when nothing is in progress.
    fn save(&self) -> std::io::Result<()> {
        match &self.state {
            Some(s) => write_atomic(&self.path, &encode(s), 0o600),
            None => match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

fn encode(state: &State) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(postcard::to_allocvec(state).unwrap_or_default());
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<State> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if !body.starts_with(MAGIC) || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let state: State = postcard::from_bytes(&body[MAGIC.len()..]).ok()?;
    (state.total <= MAX_TOTAL && state.bytes.len() < state.total as usize).then_some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(inner: &[u8], offset: usize, len: usize) -> PartIn {
        PartIn {
            id: part_id(inner),
            total: inner.len() as u32,
            offset: offset as u32,
            data: inner[offset..offset + len].to_vec(),
        }
    }

    #[test]
    fn contiguous_parts_complete_once_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Vec<u8> = (0..100u8).collect();
        let mut r = Reassembly::load(dir.path());
        assert_eq!(r.progress(), None);
        assert_eq!(r.accept(&part(&inner, 30, 10)).unwrap(), None, "a gap");
        assert_eq!(r.progress(), None);
        assert_eq!(r.accept(&part(&inner, 0, 30)).unwrap(), None);
        // A repeat, then an overlap that reaches further.
        assert_eq!(r.accept(&part(&inner, 0, 30)).unwrap(), None);
        assert_eq!(r.accept(&part(&inner, 20, 30)).unwrap(), None);
        let id = part_id(&inner);
        assert_eq!(r.progress(), Some(PartProgress { id, offset: 50 }));
        let mut r = Reassembly::load(dir.path());
        assert_eq!(r.progress(), Some(PartProgress { id, offset: 50 }));
        assert_eq!(
            r.accept(&part(&inner, 50, 50)).unwrap(),
            Some(inner.clone())
        );
        assert_eq!(r.progress(), None);
        assert!(!dir.path().join(PARTS_FILE).exists());
        assert_eq!(r.accept(&part(&inner, 50, 50)).unwrap(), None, "once");
    }

    #[test]
    fn another_item_restarts_only_from_zero_and_bounds_hold() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = vec![1; 60];
        let b: Vec<u8> = vec![2; 60];
        let mut r = Reassembly::load(dir.path());
        r.accept(&part(&a, 0, 20)).unwrap();
        r.accept(&part(&b, 20, 20)).unwrap();
        assert_eq!(r.progress().map(|p| p.id), Some(part_id(&a)));
        r.accept(&part(&b, 0, 20)).unwrap();
        assert_eq!(
            r.progress(),
            Some(PartProgress {
                id: part_id(&b),
                offset: 20
            })
        );
        let big = vec![0u8; MAX_TOTAL as usize + 1];
        assert_eq!(r.accept(&part(&big, 0, 20)).unwrap(), None);
        assert_eq!(r.progress().map(|p| p.id), Some(part_id(&b)));
        // Bytes that are not what the id says are dropped, not applied.
        let mut forged = part(&b, 20, 40);
        forged.data[0] ^= 1;
        assert_eq!(r.accept(&forged).unwrap(), None);
        assert_eq!(r.progress(), None);
    }

    #[test]
    fn a_damaged_file_is_no_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let inner = vec![7u8; 40];
        let mut r = Reassembly::load(dir.path());
        r.accept(&part(&inner, 0, 10)).unwrap();
        let path = dir.path().join(PARTS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Reassembly::load(dir.path()).progress(), None);
        std::fs::write(&path, b"PRT1").unwrap();
        assert_eq!(Reassembly::load(dir.path()).progress(), None);
        // Bytes past the total, CRC valid: refused too.
        let over = State {
            id: 1,
            total: 2,
            bytes: vec![0; 3],
        };
        std::fs::write(&path, encode(&over)).unwrap();
        assert_eq!(Reassembly::load(dir.path()).progress(), None);
    }
}
