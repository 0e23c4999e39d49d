//! Keeping the queue inside its bounds.
//!
//! Policy, applied before each append that would cross `max_total_bytes` or
//! push the file system under `min_free_disk_bytes`, one step at a time until
//! the record fits. A record only ever evicts records of its own class or of a
//! lower one (a new heartbeat never costs an old log or event):
//! 1. compact the oldest closed segment that holds **heartbeats**, dropping
//!    them (a newer heartbeat supersedes them);
//! 2. then likewise for **logs** (only for an incoming log or event);
//! 3. then delete the oldest closed segment outright, i.e. its **events**
//!    (only for an incoming event);
//! 4. if only the active segment holds such records, close it so that steps
//!    1-3 apply to it.
//!
//! If nothing is left to evict, the append fails with [`QueueError::Full`]
//! (retriable): the queue never fills the disk and never crashes on a full one.
//! Records older than `max_record_age_seconds` are dropped whole segments at a
//! time. Every dropped record is counted per class in [`super::Stats::dropped`].
//! Compaction copies the surviving frames into a new file and renames it over
//! the old one; no record is ever rewritten in place.

use flotta_proto::record::RecordClass;

use super::frame::{Entry, Scanner};
use super::segment::{self, COMPACT_EXT, Segment};
use super::{DiskSpace, Queue, QueueError};
use crate::clock::Clock;

impl<C: Clock, D: DiskSpace> Queue<C, D> {
    /// Evict until a frame of `need` bytes fits both bounds.
    pub(super) fn make_room(&mut self, need: u64, class: RecordClass) -> Result<(), QueueError> {
        loop {
            let over_total = self.total_bytes() + need > self.cfg.max_total_bytes;
            // A probe that fails tells us nothing: do not evict on a guess.
            let free = self.disk.free_bytes(self.dir()).unwrap_or(u64::MAX);
            let over_disk = free < self.cfg.min_free_disk_bytes.saturating_add(need);
            if !over_total && !over_disk {
                return Ok(());
            }
            if !self.evict_step(class)? {
                return Err(QueueError::Full { needed_bytes: need });
            }
        }
    }

    /// One eviction step; `false` when there is nothing left to evict.
    fn evict_step(&mut self, incoming: RecordClass) -> Result<bool, QueueError> {
        let closed = self.segments.len().saturating_sub(1);
        for level in [RecordClass::Heartbeat, RecordClass::Log] {
            if level > incoming {
                break;
            }
            if let Some(i) = (0..closed).find(|&i| self.segments[i].evictable(level) > 0) {
                self.compact(i, level)?;
                return Ok(true);
            }
        }
        if closed > 0 && incoming == RecordClass::Event {
            self.delete_oldest()?;
            return Ok(true);
        }
        if self
            .segments
            .back()
            .is_some_and(|s| s.evictable(incoming) > 0)
        {
            self.roll()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Drop closed segments whose newest record is older than the age bound.
    pub(super) fn evict_expired(&mut self, now_ms: u64) -> Result<(), QueueError> {
        if self.cfg.max_record_age_seconds == 0 {
            return Ok(());
        }
        let max_age_ms = self.cfg.max_record_age_seconds.saturating_mul(1000);
        while self.segments.len() > 1
            && self.segments[0].data_records() > 0
            && self.segments[0].newest_at_ms.saturating_add(max_age_ms) < now_ms
        {
            self.delete_oldest()?;
        }
        Ok(())
    }

    /// Delete the oldest (closed) segment, counting its unacknowledged records as dropped.
    fn delete_oldest(&mut self) -> Result<(), QueueError> {
        let base = self.segments[0].base;
        let path = self.segment_path(base);
        let buf = segment::read_all(&path)?;
        for found in Scanner::new(&buf, 0) {
            if let Entry::Data { seq, class, .. } = found.entry
                && self.acked.is_none_or(|a| seq > a)
            {
                self.stats.dropped[class.index()] += 1;
            }
        }
        // The newest acknowledgement must survive: keep it if this segment holds it.
        let carried_ack = self.segments[0].max_ack.filter(|a| Some(*a) == self.acked);
        std::fs::remove_file(&path).map_err(QueueError::io(&path))?;
        self.segments.pop_front();
        if let Some(through) = carried_ack
            && !self.segments.iter().any(|s| s.max_ack == Some(through))
        {
            self.rewrite_ack(through)?;
        }
        segment::sync_dir(self.dir())?;
        self.stats.fsyncs += 1;
        self.recount_unacked()
    }

    /// Re-append an acknowledgement marker to the active segment.
    fn rewrite_ack(&mut self, through: u64) -> Result<(), QueueError> {
        self.acked = None;
        self.ack(through)
    }

    /// Rewrite closed segment `i` without unacknowledged records of classes up
    /// to `level` and without acknowledged data; acknowledgement markers stay.
    fn compact(&mut self, i: usize, level: RecordClass) -> Result<(), QueueError> {
        let base = self.segments[i].base;
        let path = self.segment_path(base);
        let buf = segment::read_all(&path)?;
        let mut kept = Vec::with_capacity(buf.len());
        for found in Scanner::new(&buf, 0) {
            let keep = match found.entry {
                Entry::Ack { .. } => true,
                Entry::Data { seq, class, .. } => {
                    if self.acked.is_some_and(|a| seq <= a) {
                        false
                    } else if class <= level {
                        self.stats.dropped[class.index()] += 1;
                        false
                    } else {
                        true
                    }
                }
            };
            if keep {
                kept.extend_from_slice(&buf[found.offset..found.offset + found.len]);
            }
        }
        let tmp = segment::segment_path(self.dir(), base, COMPACT_EXT);
        segment::replace_durably(self.dir(), &tmp, &path, &kept)?;
        self.stats.fsyncs += 2;
        self.stats.bytes_written += kept.len() as u64;
        self.segments[i] = Segment::from_bytes(base, &kept).segment;
        self.recount_unacked()
    }
}
