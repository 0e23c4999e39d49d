//! The queue itself: append, read a batch, acknowledge, group commit.
//!
//! Recovery lives in `recover.rs` and eviction in `evict.rs`; this file keeps
//! the hot path.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use flotta_proto::record::RecordClass;

use super::frame::{self, Entry, Scanner};
use super::segment::{self, SEGMENT_EXT, Segment};
use super::{DiskSpace, QueueConfig, QueueError, Stats};
use crate::clock::Clock;

/// How soon an appended record must be on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `append` returns only after an fsync covers the record.
    Durable,
    /// Written to the OS now, fsynced with the next durable append, `sync`, or
    /// at the latest `group_commit_max_delay_ms` later (the owner calls
    /// [`Queue::sync_if_due`]). A power loss may lose it.
    Buffered,
}

/// A record read back from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number.
    pub seq: u64,
    /// Production time, ms since the Unix epoch, as the queue's clock
    /// corrects it on reading (`Clock::restamp`; the stored stamp is not
    /// rewritten).
    pub at_ms: u64,
    /// Eviction class.
    pub class: RecordClass,
    /// Payload as appended.
    pub payload: Vec<u8>,
}

/// A durable, bounded, crash-safe FIFO of records (see the module docs).
pub struct Queue<C: Clock, D: DiskSpace> {
    pub(super) dir: PathBuf,
    pub(super) cfg: QueueConfig,
    pub(super) clock: C,
    pub(super) disk: D,
    /// Oldest first; the last one is the active segment.
    pub(super) segments: VecDeque<Segment>,
    pub(super) active: File,
    pub(super) next_seq: u64,
    pub(super) acked: Option<u64>,
    /// Unacknowledged data records.
    pub(super) unacked: u64,
    /// Time of the oldest write not yet covered by an fsync.
    pub(super) unsynced_since_ms: Option<u64>,
    /// Length to truncate the active segment back to before the next write,
    /// after a failed write whose truncation also failed.
    pub(super) repair_to: Option<u64>,
    pub(super) stats: Stats,
    pub(super) scratch: Vec<u8>,
}

impl<C: Clock, D: DiskSpace> std::fmt::Debug for Queue<C, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("next_seq", &self.next_seq)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl<C: Clock, D: DiskSpace> Queue<C, D> {
    /// Append one record; returns its sequence number.
    pub fn append(
        &mut self,
        class: RecordClass,
        payload: &[u8],
        durability: Durability,
    ) -> Result<u64, QueueError> {
        let seq = self.write_data(class, payload)?;
        if durability == Durability::Durable {
            self.sync()?;
        }
        Ok(seq)
    }

    /// Append several records with a single fsync (group commit); returns
    /// their sequence numbers. On error, the records before the failing one
    /// are written but only durable after the next successful `sync`.
    pub fn append_batch<'p>(
        &mut self,
        records: impl IntoIterator<Item = (RecordClass, &'p [u8])>,
    ) -> Result<Range<u64>, QueueError> {
        let first = self.next_seq;
        for (class, payload) in records {
            self.write_data(class, payload)?;
        }
        self.sync()?;
        Ok(first..self.next_seq)
    }

    /// fsync the active segment if anything written is not yet durable.
    pub fn sync(&mut self) -> Result<(), QueueError> {
        if self.unsynced_since_ms.is_some() {
            self.active
                .sync_data()
                .map_err(QueueError::io(self.active_path()))?;
            self.stats.fsyncs += 1;
            self.unsynced_since_ms = None;
        }
        Ok(())
    }

    /// When the owner must call [`Queue::sync_if_due`] next (ms since the epoch), if ever.
    pub fn sync_due_at_ms(&self) -> Option<u64> {
        self.unsynced_since_ms
            .map(|t| t.saturating_add(self.cfg.group_commit_max_delay_ms))
    }

    /// fsync if buffered records have waited `group_commit_max_delay_ms`.
    pub fn sync_if_due(&mut self) -> Result<(), QueueError> {
        match self.sync_due_at_ms() {
            Some(due) if due <= self.clock.now_ms() => self.sync(),
            _ => Ok(()),
        }
    }

    /// Up to `max_records` unacknowledged records, oldest first, whose payloads
    /// total at most `max_bytes` (at least one record is returned if any waits).
    pub fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError> {
        self.read_batch_from(0, max_records, max_bytes)
    }

    /// [`read_batch`](Self::read_batch) of the records numbered `from` or
    /// above (a frame window goes on past records it leaves for later).
    pub fn read_batch_from(
        &mut self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError> {
        // The server may acknowledge what we send; it must not outlive a power loss here.
        self.sync()?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for i in 0..self.segments.len() {
            if self.segments[i].fully_acked(self.acked)
                || self.segments[i].last_data.is_none_or(|l| l < from)
            {
                continue;
            }
            let path = self.segment_path(self.segments[i].base);
            let buf = segment::read_all(&path)?;
            let start = usize::try_from(self.segments[i].acked_prefix).unwrap_or(0);
            for found in Scanner::new(&buf, start) {
                let Entry::Data {
                    seq,
                    at_ms,
                    class,
                    payload,
                } = found.entry
                else {
                    continue;
                };
                if seq < from || self.acked.is_some_and(|a| seq <= a) {
                    continue;
                }
                if out.len() >= max_records
                    || (!out.is_empty() && bytes + payload.len() > max_bytes)
                {
                    return Ok(out);
                }
                bytes += payload.len();
                out.push(Record {
                    seq,
                    // Early stamps leave corrected (`agent_time/restamp.rs`).
                    at_ms: self.clock.restamp(seq, at_ms),
                    class,
                    payload: payload.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// The server stored everything up to and including `through`: record that
    /// durably, then delete segments holding nothing unacknowledged.
    pub fn ack(&mut self, through: u64) -> Result<(), QueueError> {
        let Some(last) = self.next_seq.checked_sub(1) else {
            return Ok(());
        };
        let through = through.min(last);
        if self.acked.is_some_and(|a| through <= a) {
            return Ok(());
        }
        // Whole segments at or below `through` need no marker: deleting them
        // first also frees the room the marker needs on a full disk.
        self.drop_acked_front(Some(through))?;
        self.scratch.clear();
        let len = frame::encode(&Entry::Ack { through }, &mut self.scratch);
        self.write_frame(len)?;
        let end = self.active_len();
        if let Some(active) = self.segments.back_mut() {
            active.note(&Entry::Ack { through }, end);
        }
        self.sync()?;
        self.acked = Some(through);
        self.recount_unacked()
    }

    /// Make sure the next sequence number is at least `min_next` (the server
    /// remembers more than we do, e.g. after the queue directory was wiped).
    /// Persisted through the name of a fresh segment.
    pub fn ensure_next_seq_at_least(&mut self, min_next: u64) -> Result<(), QueueError> {
        if min_next > self.next_seq {
            self.next_seq = min_next;
            self.roll()?;
        }
        Ok(())
    }

    /// Counters for heartbeats and benchmarks.
    pub fn stats(&self) -> Stats {
        Stats {
            records: self.unacked,
            bytes: self.total_bytes(),
            segments: self.segments.len(),
            ..self.stats
        }
    }

    /// Highest acknowledged sequence number, if any.
    pub fn acked_through(&self) -> Option<u64> {
        self.acked
    }

    /// The queue's clock, read (milliseconds since the Unix epoch).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The newest production time of any record still on disk (the
    /// agent clock starts no earlier: stamps stay monotonic across restarts).
    pub fn newest_at_ms(&self) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.data_records() > 0)
            .map(|s| s.newest_at_ms)
            .max()
    }

    /// The sequence number the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(super) fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    pub(super) fn segment_path(&self, base: u64) -> PathBuf {
        segment::segment_path(&self.dir, base, SEGMENT_EXT)
    }

    fn active_path(&self) -> PathBuf {
        self.segment_path(self.segments.back().map_or(0, |s| s.base))
    }

    fn active_len(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.len)
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_data(&mut self, class: RecordClass, payload: &[u8]) -> Result<u64, QueueError> {
        self.write_data_at(class, payload, None)
    }

    /// Append a record produced earlier (at `at_ms`) under a new sequence
    /// number, durably: how records whose numbers the server already used
    /// (after the queue was lost) are moved above them.
    pub fn append_renumbered(
        &mut self,
        class: RecordClass,
        payload: &[u8],
        at_ms: u64,
    ) -> Result<u64, QueueError> {
        let seq = self.write_data_at(class, payload, Some(at_ms))?;
        self.sync()?;
        Ok(seq)
    }

    fn write_data_at(
        &mut self,
        class: RecordClass,
        payload: &[u8],
        at_ms: Option<u64>,
    ) -> Result<u64, QueueError> {
        if payload.len() > self.cfg.max_record_bytes {
            return Err(QueueError::RecordTooLarge {
                len: payload.len(),
                max: self.cfg.max_record_bytes,
            });
        }
        let now = self.clock.stamp(self.next_seq);
        self.evict_expired(now)?;
        let seq = self.next_seq;
        let entry = Entry::Data {
            seq,
            at_ms: at_ms.unwrap_or(now),
            class,
            payload,
        };
        self.scratch.clear();
        let len = frame::encode(&entry, &mut self.scratch);
        self.make_room(len as u64, class)?;
        if self.active_len() > 0 && self.active_len() + len as u64 > self.cfg.segment_bytes {
            self.roll()?;
        }
        self.write_frame(len)?;
        let end = self.active_len();
        if let Some(active) = self.segments.back_mut() {
            active.note(&entry, end);
        }
        self.next_seq += 1;
        self.unacked += 1;
        self.stats.payload_bytes += payload.len() as u64;
        Ok(seq)
    }

    /// Write the `len` bytes in `scratch` at the end of the active segment;
    /// on failure, truncate the partial frame away so the file stays clean.
    fn write_frame(&mut self, len: usize) -> Result<(), QueueError> {
        let before = self.active_len();
        let path = self.active_path();
        if let Some(to) = self.repair_to {
            self.active.set_len(to).map_err(QueueError::io(&path))?;
            self.repair_to = None;
        }
        let result = self.active.write_all(&self.scratch[..len]);
        if let Err(e) = result {
            if self.active.set_len(before).is_err() {
                self.repair_to = Some(before);
            }
            return Err(if e.kind() == io::ErrorKind::StorageFull {
                QueueError::Full {
                    needed_bytes: len as u64,
                }
            } else {
                QueueError::Io { path, source: e }
            });
        }
        if let Some(active) = self.segments.back_mut() {
            active.len = before + len as u64;
        }
        self.stats.bytes_written += len as u64;
        if self.unsynced_since_ms.is_none() {
            self.unsynced_since_ms = Some(self.clock.now_ms());
        }
        Ok(())
    }

    /// Close the active segment (durably) and start a new one at `next_seq`.
    pub(super) fn roll(&mut self) -> Result<(), QueueError> {
        if self
            .segments
            .back()
            .is_some_and(|s| s.base == self.next_seq)
        {
            return Ok(());
        }
        self.sync()?;
        let path = self.segment_path(self.next_seq);
        self.active = segment::open_append(&path)?;
        segment::sync_dir(&self.dir)?;
        self.stats.fsyncs += 1;
        self.segments.push_back(Segment::empty(self.next_seq));
        Ok(())
    }

    /// Delete closed segments from the front while they hold nothing
    /// unacknowledged. Only from the front, so that the segment holding the
    /// newest acknowledgement marker outlives every older segment.
    /// Deleting a segment whose data all lie at or below `acked` is safe even
    /// before the marker for `acked` is written: its records are gone, and the
    /// marker of any earlier acknowledgement lies in a later segment.
    pub(super) fn drop_acked_front(&mut self, acked: Option<u64>) -> Result<(), QueueError> {
        let mut deleted = false;
        while self.segments.len() > 1 && self.segments[0].fully_acked(acked) {
            let base = self.segments[0].base;
            let path = self.segment_path(base);
            std::fs::remove_file(&path).map_err(QueueError::io(&path))?;
            self.segments.pop_front();
            deleted = true;
        }
        if deleted {
            segment::sync_dir(&self.dir)?;
            self.stats.fsyncs += 1;
        }
        Ok(())
    }

    /// Recount unacknowledged records and advance each segment's acked
    /// prefix; reads only the one segment that straddles the ack point.
    pub(super) fn recount_unacked(&mut self) -> Result<(), QueueError> {
        let mut unacked = 0;
        for i in 0..self.segments.len() {
            let seg = &self.segments[i];
            if seg.fully_acked(self.acked) {
                self.segments[i].acked_prefix = seg.len;
            } else if seg.none_acked(self.acked) {
                unacked += seg.data_records();
            } else {
                let buf = segment::read_all(&self.segment_path(seg.base))?;
                let mut prefix = None;
                for found in Scanner::new(&buf, 0) {
                    if let Entry::Data { seq, .. } = found.entry
                        && self.acked.is_some_and(|a| seq > a)
                    {
                        unacked += 1;
                        prefix.get_or_insert(found.offset as u64);
                    }
                }
                self.segments[i].acked_prefix = prefix.unwrap_or(seg.len);
            }
        }
        self.unacked = unacked;
        Ok(())
    }
}
