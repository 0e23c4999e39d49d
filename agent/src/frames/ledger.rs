//! The in-flight ledger: frames sent without waiting for their answer
//! (carriers whose answers come later, LoRaWAN class A), on disk at
//! `<data_dir>/frame/ledger.bin`, so that records travel once, are deleted
//! only after an ack, and are re-packed when their frame was lost.
//!
//! Each entry is one uplink counter and the *parts* of records it carried:
//! a part lists the queue records the record stands for (`covers`), whether
//! the record's last byte is in this frame (`ends`), and whether an earlier
//! fragment of it was lost (`broken`). Rules:
//!
//! - **Write-ahead.** An entry is saved (fsynced) before its frame is
//!   handed to the carrier; a crash in between leaves an entry for a frame
//!   never sent, which the next ack reveals as lost.
//! - **In flight means not sent again.** Records covered by an unresolved
//!   entry are left out of new frames ([`Ledger::in_flight`]).
//! - **Resolution.** A downlink answer is *fresh* when it opens, its
//!   downlink counter is above every answer accepted before (persisted:
//!   an old answer replayed cannot roll configuration back) and its ack
//!   covers at least one unresolved counter (it was computed after that
//!   frame arrived). LoRaWAN, SBD and this agent's carriers deliver uplinks
//!   in order, so every entry up to the highest counter the ack covers is
//!   resolved by it: stored (its ending parts are delivered unless
//!   `broken`), or lost (its records return to the queue's plan; a lost
//!   fragment breaks the part that ends the record, now or when it is
//!   sent).
//! - **Span.** The server's ack describes 32 counters above its `below`
//!   and its replay window 64: a device never keeps an entry 32 or more
//!   counters below the frame it seals ([`Ledger::give_up_below`]); those
//!   are given up (records re-packed, deduplicated by `seq` on the server).
//! - **Context.** Entries belong to one key id and epoch: loading under
//!   another context (a rekey, new keys over TLS) gives them all up.
//!
//! Format: magic `LDG1`, postcard state, CRC-32 of both. A missing or
//! damaged file is an empty ledger: its records are sent again (never
//! lost; the server deduplicates them), and freshness falls back to "acks a
//! counter in flight", which an old answer never does for new counters.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use flotta_proto::frame::Ack;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// The file, relative to the data directory.
pub(crate) const LEDGER_FILE: &str = "frame/ledger.bin";
const MAGIC: &[u8; 4] = b"LDG1";
/// Entries are given up once they are this many counters below the frame
/// being sealed (the server's ack bitmap covers 32 counters).
pub(crate) const MAX_SPAN: u32 = 32;
/// Most entries kept (a bound on the file; `MAX_SPAN` bounds it already
/// while counters are consecutive).
const MAX_ENTRIES: usize = MAX_SPAN as usize;
/// Most delivered-but-held-back records remembered.
const MAX_DELIVERED: usize = 1024;

/// A record, or a piece of one, carried by a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    /// The queue records the record stands for (a summary: its heartbeats).
    pub(crate) covers: Vec<u64>,
    /// The record's last byte is in this frame.
    pub(crate) ends: bool,
    /// An earlier frame carrying a fragment of it was lost.
    pub(crate) broken: bool,
}

impl Part {
    fn key(&self) -> Option<u64> {
        self.covers.first().copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    counter: u32,
    sent_at_ms: u64,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    key_id: [u8; 4],
    epoch: u32,
    /// Highest downlink counter accepted (answers must be above it).
    highest_down: Option<u32>,
    /// Ascending counters.
    entries: Vec<Entry>,
    /// Queue records the server stored that the queue still holds (an
    /// earlier one is not acknowledged yet): not sent again by the next
    /// process either. At most `MAX_DELIVERED`, the lowest dropped first
    /// (a dropped one is merely sent again).
    delivered: Vec<u64>,
}

/// What an accepted answer (or giving up) settled.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// Queue records the server stored (covers of delivered parts).
    pub(crate) delivered: Vec<u64>,
    /// Frames acknowledged.
    pub(crate) acked_frames: u32,
    /// Frames lost or given up: their records are planned again.
    pub(crate) lost_frames: u32,
}

/// The ledger of one frame context (module docs).
#[derive(Debug)]
pub(crate) struct Ledger {
    path: PathBuf,
    state: State,
    /// Records (by first cover) with a lost piece whose last piece is not
    /// in the ledger yet: the part that ends them is pushed broken. Not
    /// persisted: a window always packs a record from its first byte, so
    /// only the window (process) that lost a piece can push its end.
    broken: Vec<u64>,
}

impl Ledger {
    /// The ledger stored under `data_dir` for the context (`key_id`,
    /// `epoch`): empty if missing, damaged or of another context.
    pub(crate) fn load(data_dir: &Path, key_id: [u8; 4], epoch: u32) -> Self {
        let path = data_dir.join(LEDGER_FILE);
        let state = std::fs::read(&path)
            .ok()
            .and_then(|b| decode(&b))
            .filter(|s| s.key_id == key_id && s.epoch == epoch)
            .unwrap_or(State {
                key_id,
                epoch,
                ..State::default()
            });
        Self {
            path,
            state,
            broken: Vec::new(),
        }
    }

    /// Records stored by the server but still queued.
    pub(crate) fn delivered(&self) -> &[u64] {
        &self.state.delivered
    }

    /// Remember `seqs` as delivered, forgetting those the queue deleted
    /// (acknowledged through `acked`).
    pub(crate) fn note_delivered(&mut self, seqs: &[u64], acked: Option<u64>) {
        let d = &mut self.state.delivered;
        d.extend_from_slice(seqs);
        d.sort_unstable();
        d.dedup();
        if let Some(a) = acked {
            d.retain(|s| *s > a);
        }
        let excess = d.len().saturating_sub(MAX_DELIVERED);
        d.drain(..excess);
    }

    /// Frames awaiting their ack.
    pub(crate) fn len(&self) -> usize {
        self.state.entries.len()
    }

    /// Queue records carried by frames awaiting their ack: not to be sent
    /// again.
    pub(crate) fn in_flight(&self) -> BTreeSet<u64> {
        self.state
            .entries
            .iter()
            .flat_map(|e| &e.parts)
            .flat_map(|p| p.covers.iter().copied())
            .collect()
    }

    /// The status's low-water mark for a frame under `counter`: the lowest
    /// counter still awaited.
    pub(crate) fn low_water(&self, counter: u32) -> u32 {
        self.state
            .entries
            .first()
            .map_or(counter, |e| e.counter.min(counter))
    }

    /// Give up entries `MAX_SPAN` or more counters below `counter` (or
    /// beyond the entry cap): they are lost to this device.
    pub(crate) fn give_up_below(&mut self, counter: u32) -> Resolution {
        let floor = counter.saturating_sub(MAX_SPAN - 1);
        let mut res = Resolution::default();
        while let Some(first) = self.state.entries.first() {
            if first.counter >= floor && self.state.entries.len() < MAX_ENTRIES {
                break;
            }
            let entry = self.state.entries.remove(0);
            self.lose(&entry);
            res.lost_frames += 1;
        }
        res
    }

    /// Note a frame about to be sent (save before sending it).
    pub(crate) fn push(&mut self, counter: u32, sent_at_ms: u64, parts: Vec<Part>) {
        debug_assert!(
            self.state
                .entries
                .last()
                .is_none_or(|e| e.counter < counter)
        );
        let mut parts = parts;
        for part in &mut parts {
            if let Some(i) = self.broken.iter().position(|k| Some(*k) == part.key()) {
                part.broken = true;
                if part.ends {
                    self.broken.remove(i);
                }
            }
        }
        self.state.entries.push(Entry {
            counter,
            sent_at_ms,
            parts,
        });
    }

    /// Forget the frame of `counter` noted last: it never went on air (the
    /// governor or the modem refused it before transmission).
    pub(crate) fn unsend(&mut self, counter: u32) {
        if self
            .state
            .entries
            .last()
            .is_some_and(|e| e.counter == counter)
        {
            self.state.entries.pop();
        }
    }

    /// Settle what an answer under downlink `down_counter` acknowledges;
    /// `None` if the answer is not fresh (module docs): it must then be
    /// ignored, configuration and keys included.
    pub(crate) fn resolve(&mut self, ack: &Ack, down_counter: u32) -> Option<Resolution> {
        if self.state.highest_down.is_some_and(|h| down_counter <= h) {
            return None;
        }
        let highest = self
            .state
            .entries
            .iter()
            .rev()
            .find(|e| ack.acks(e.counter))?
            .counter;
        self.state.highest_down = Some(down_counter);
        let mut res = Resolution::default();
        // In counter order: a lost entry breaks parts of later ones, which
        // may be settled by this very ack.
        while self
            .state
            .entries
            .first()
            .is_some_and(|e| e.counter <= highest)
        {
            let entry = self.state.entries.remove(0);
            if ack.acks(entry.counter) {
                res.acked_frames += 1;
                res.delivered.extend(
                    entry
                        .parts
                        .iter()
                        .filter(|p| p.ends && !p.broken)
                        .flat_map(|p| p.covers.iter().copied()),
                );
            } else {
                self.lose(&entry);
                res.lost_frames += 1;
            }
        }
        Some(res)
    }

    /// A lost entry breaks the later parts that end its unfinished records.
    fn lose(&mut self, entry: &Entry) {
        for part in entry.parts.iter().filter(|p| !p.ends) {
            let key = part.key();
            let mut ended = false;
            for later in &mut self.state.entries {
                for p in later.parts.iter_mut().filter(|p| p.key() == key) {
                    p.broken = true;
                    ended |= p.ends;
                }
            }
            if let (false, Some(k)) = (ended, key)
                && !self.broken.contains(&k)
            {
                // Its last piece is still to be sent.
                if self.broken.len() == MAX_ENTRIES {
                    self.broken.remove(0);
                }
                self.broken.push(k);
            }
        }
    }

    /// Replace the file durably (removing it when there is nothing to
    /// remember).
    ///
    /// # Errors
    /// The I/O error.
    pub(crate) fn save(&self) -> std::io::Result<()> {
        if self.state.entries.is_empty()
            && self.state.highest_down.is_none()
            && self.state.delivered.is_empty()
        {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        write_atomic(&self.path, &encode(&self.state), 0o600)
    }
}

fn encode(state: &State) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(postcard::to_allocvec(state).unwrap_or_default());
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}

/// Whether `bytes` decode as a ledger file (the fuzz target's entry).
#[doc(hidden)]
#[allow(unreachable_pub)]
pub fn decode_file(bytes: &[u8]) -> bool {
    decode(bytes).is_some()
}

fn decode(bytes: &[u8]) -> Option<State> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if !body.starts_with(MAGIC) || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let state: State = postcard::from_bytes(&body[MAGIC.len()..]).ok()?;
    let ascending = state
        .entries
        .windows(2)
        .all(|w| w[0].counter < w[1].counter);
    let bounded = state.entries.len() <= MAX_ENTRIES && state.delivered.len() <= MAX_DELIVERED;
    (ascending && bounded).then_some(state)
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
