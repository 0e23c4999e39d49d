//! Sealed answers kept for duplicates: a bounded, in-memory cache of the
//! answer each fresh frame got, by (key id, epoch, uplink counter, tag), so
//! that a duplicate is answered with bytes that were already sealed, never
//! under a new downlink counter. The tag makes an entry match only the very
//! datagram that was stored (a key id reused after a revocation, with its
//! counters starting again, can never hit an old entry).
//!
//! Why: a frame captured off the air can be replayed any number of times.
//! Before this cache, each replay was answered with a newly sealed ack,
//! spending a downlink counter (2^24 per epoch) and a store write each
//! time. Now a replay costs one `open` and a map lookup:
//!
//! - the fresh frame's own answer is resent when it is no longer than the
//!   duplicate (no amplification);
//! - otherwise an ack-only answer is sealed once, on the first such
//!   duplicate, and kept beside it for the next ones.
//!
//! Only a miss (evicted, or the server restarted) seals again, once per
//! frame and cache lifetime; concurrent first duplicates of one frame may
//! each seal one (bounded by `udp_max_in_flight`). Entries are evicted
//! oldest first when their bytes exceed the budget: answers to recent
//! frames are the ones a device retries.
//!
//! Duplicates answered from here skip the store, so their count (`describe`
//! shows it) is kept here per key id and added to the store with the key's
//! next fresh frame (lost on a restart: it is a statistic).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Which frame an answer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRef {
    /// The frame's key id.
    pub key_id: [u8; 4],
    /// Its epoch.
    pub epoch: u32,
    /// Its uplink counter.
    pub counter: u32,
    /// Its authentication tag.
    pub tag: [u8; 8],
}

impl FrameRef {
    /// The frame `datagram` is (already opened: it has a tag), under
    /// `key_id` at `epoch` with `counter`.
    pub fn of(key_id: [u8; 4], epoch: u32, counter: u32, datagram: &[u8]) -> Self {
        let mut tag = [0u8; 8];
        let from = datagram.len().saturating_sub(tag.len());
        let got = &datagram[from..];
        tag[..got.len()].copy_from_slice(got);
        Self {
            key_id,
            epoch,
            counter,
            tag,
        }
    }
}

/// Bytes an entry is charged besides its answers (key, map and queue slots).
const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug, Default)]
struct Entry {
    /// The answer the fresh frame got (`None`: the entry was made by a
    /// duplicate after a miss).
    full: Option<Arc<[u8]>>,
    /// An ack-only answer sealed for a duplicate the full one was too long
    /// for (or after a miss).
    ack_only: Option<Arc<[u8]>>,
}

impl Entry {
    fn bytes(&self) -> usize {
        ENTRY_OVERHEAD
            + self.full.as_ref().map_or(0, |a| a.len())
            + self.ack_only.as_ref().map_or(0, |a| a.len())
    }

    /// The first kept answer no longer than `max_len`.
    fn fitting(&self, max_len: usize) -> Option<Arc<[u8]>> {
        [&self.full, &self.ack_only]
            .into_iter()
            .flatten()
            .find(|a| a.len() <= max_len)
            .cloned()
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<FrameRef, Entry>,
    /// Insertion order, for eviction (may name entries already gone).
    order: VecDeque<FrameRef>,
    bytes: usize,
    /// Duplicates answered from here, per key id, not yet in the store.
    duplicates: HashMap<[u8; 4], u64>,
}

/// Answers to fresh frames, kept for their duplicates.
#[derive(Debug)]
pub struct AnswerCache {
    inner: Mutex<Inner>,
    budget_bytes: usize,
}

impl AnswerCache {
    /// A cache holding at most about `budget_bytes` of answers.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            budget_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kept answer to `frame` no longer than `max_len`; when there is
    /// one, the duplicate is counted for the key's next fresh frame.
    pub fn answer_duplicate(&self, frame: FrameRef, max_len: usize) -> Option<Arc<[u8]>> {
        let mut inner = self.lock();
        let hit = inner.entries.get(&frame)?.fitting(max_len)?;
        *inner.duplicates.entry(frame.key_id).or_default() += 1;
        Some(hit)
    }

    /// Keep the answer a fresh `frame` got.
    pub fn remember_fresh(&self, frame: FrameRef, answer: &[u8]) {
        self.insert(frame, |e| e.full = Some(answer.into()));
    }

    /// Keep the ack-only answer sealed for a duplicate of `frame`.
    pub fn remember_ack_only(&self, frame: FrameRef, answer: &[u8]) {
        self.insert(frame, |e| e.ack_only = Some(answer.into()));
    }

    fn insert(&self, frame: FrameRef, set: impl FnOnce(&mut Entry)) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let entry = match inner.entries.get_mut(&frame) {
            Some(e) => {
                inner.bytes -= e.bytes();
                e
            }
            None => {
                inner.order.push_back(frame);
                inner.entries.entry(frame).or_default()
            }
        };
        set(entry);
        inner.bytes += entry.bytes();
        while inner.bytes > self.budget_bytes {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&old) {
                inner.bytes -= gone.bytes();
            }
        }
        if inner.order.len() > 2 * inner.entries.len() + 16 {
            let Inner { entries, order, .. } = inner;
            order.retain(|k| entries.contains_key(k));
        }
    }

    /// Duplicates of `key_id` answered from here since the last call (to
    /// be added to the store with a fresh frame).
    pub fn take_duplicates(&self, key_id: [u8; 4]) -> u64 {
        self.lock().duplicates.remove(&key_id).unwrap_or(0)
    }

    /// Give back what [`AnswerCache::take_duplicates`] took when the store
    /// did not take it.
    pub fn restore_duplicates(&self, key_id: [u8; 4], n: u64) {
        if n > 0 {
            *self.lock().duplicates.entry(key_id).or_default() += n;
        }
    }

    /// Answers kept and the bytes they are charged.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(counter: u32) -> FrameRef {
        FrameRef {
            key_id: [1, 2, 3, 4],
            epoch: 0,
            counter,
            tag: [5; 8],
        }
    }

    #[test]
    fn the_fresh_answer_is_resent_when_it_fits_else_the_ack_only_one() {
        let c = AnswerCache::new(1 << 20);
        assert_eq!(c.answer_duplicate(frame(0), 100), None, "nothing kept");
        c.remember_fresh(frame(0), &[7; 40]);
        assert_eq!(
            c.answer_duplicate(frame(0), 40).as_deref(),
            Some(&[7; 40][..])
        );
        assert_eq!(c.answer_duplicate(frame(0), 39), None, "never longer");
        c.remember_ack_only(frame(0), &[9; 20]);
        assert_eq!(
            c.answer_duplicate(frame(0), 39).as_deref(),
            Some(&[9; 20][..])
        );
        assert_eq!(
            c.answer_duplicate(frame(0), 40).as_deref(),
            Some(&[7; 40][..])
        );
        assert_eq!(c.answer_duplicate(frame(1), 100), None, "another counter");
        let forged = FrameRef {
            tag: [6; 8],
            ..frame(0)
        };
        assert_eq!(c.answer_duplicate(forged, 100), None, "another frame");
        assert_eq!(c.take_duplicates([1, 2, 3, 4]), 3);
        assert_eq!(c.take_duplicates([1, 2, 3, 4]), 0);
        c.restore_duplicates([1, 2, 3, 4], 2);
        assert_eq!(c.take_duplicates([1, 2, 3, 4]), 2);
    }

    #[test]
    fn the_oldest_answers_go_when_over_budget() {
        let per = ENTRY_OVERHEAD + 100;
        let c = AnswerCache::new(3 * per);
        for n in 0..10 {
            c.remember_fresh(frame(n), &[0; 100]);
            let (entries, bytes) = c.usage();
            assert!(bytes <= 3 * per && entries <= 3, "{entries} {bytes}");
        }
        for n in 0..7 {
            assert_eq!(c.answer_duplicate(frame(n), 200), None, "{n} evicted");
        }
        for n in 7..10 {
            assert!(c.answer_duplicate(frame(n), 200).is_some(), "{n} kept");
        }
        // Growing an entry is charged too.
        c.remember_ack_only(frame(9), &[0; 10]);
        assert!(c.usage().1 <= 3 * per);
    }
}
