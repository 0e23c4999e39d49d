//! Opening a queue directory: find the segments, verify every frame, rebuild
//! the in-memory summaries, and cut a torn tail off the last segment.

use std::collections::VecDeque;
use std::fs;
use std::path::Path;

use super::segment::{self, COMPACT_EXT, SEGMENT_EXT, Segment};
use super::{DiskSpace, Queue, QueueConfig, QueueError, Stats};
use crate::clock::Clock;

/// What recovery found, for the log and the first heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files found.
    pub segments: usize,
    /// Unacknowledged records found.
    pub records: u64,
    /// Bytes that were not part of any verified frame (skipped, counted).
    pub damaged_bytes: u64,
    /// Separate damaged spans.
    pub damaged_spans: u64,
    /// Bytes of a torn tail cut off the last segment (included in `damaged_bytes`).
    pub truncated_tail_bytes: u64,
}

impl<C: Clock, D: DiskSpace> Queue<C, D> {
    /// Open (or create) the queue in `dir`. Never panics on any bytes found
    /// there: damage is skipped, counted and reported.
    pub fn open(
        dir: &Path,
        cfg: QueueConfig,
        clock: C,
        disk: D,
    ) -> Result<(Self, Recovery), QueueError> {
        cfg.validate()?;
        fs::create_dir_all(dir).map_err(QueueError::io(dir))?;
        let mut bases = Vec::new();
        for dent in fs::read_dir(dir).map_err(QueueError::io(dir))? {
            let dent = dent.map_err(QueueError::io(dir))?;
            let name = dent.file_name();
            let Some((base, ext)) = name.to_str().and_then(segment::parse_name) else {
                continue;
            };
            if ext == SEGMENT_EXT {
                bases.push(base);
            } else if ext == COMPACT_EXT {
                // A compaction that did not reach its rename: the original is intact.
                let path = dent.path();
                fs::remove_file(&path).map_err(QueueError::io(&path))?;
            }
        }
        bases.sort_unstable();

        let mut report = Recovery {
            segments: bases.len(),
            ..Recovery::default()
        };
        let mut segments = VecDeque::with_capacity(bases.len());
        let mut next_seq = 0u64;
        let mut acked: Option<u64> = None;
        for (i, &base) in bases.iter().enumerate() {
            let path = segment::segment_path(dir, base, SEGMENT_EXT);
            let bytes = segment::read_all(&path)?;
            let mut scanned = Segment::from_bytes(base, &bytes);
            report.damaged_bytes += scanned.damaged_bytes;
            report.damaged_spans += scanned.damaged_spans;
            let is_last = i + 1 == bases.len();
            if is_last && scanned.valid_end < scanned.segment.len {
                // We append to this segment next: never after garbage.
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(QueueError::io(&path))?;
                file.set_len(scanned.valid_end)
                    .map_err(QueueError::io(&path))?;
                file.sync_all().map_err(QueueError::io(&path))?;
                report.truncated_tail_bytes = scanned.segment.len - scanned.valid_end;
                scanned.segment.len = scanned.valid_end;
            }
            let seg = scanned.segment;
            next_seq = next_seq.max(base);
            if let Some(last) = seg.last_data {
                next_seq = next_seq.max(last.saturating_add(1));
            }
            if let Some(a) = seg.max_ack {
                next_seq = next_seq.max(a.saturating_add(1));
                acked = Some(acked.map_or(a, |b| b.max(a)));
            }
            segments.push_back(seg);
        }
        if segments.is_empty() {
            segments.push_back(Segment::empty(0));
        }
        let active_base = segments.back().map_or(0, |s| s.base);
        let active_path = segment::segment_path(dir, active_base, SEGMENT_EXT);
        let active = segment::open_append(&active_path)?;
        segment::sync_dir(dir)?;

        let mut queue = Queue {
            dir: dir.to_path_buf(),
            cfg,
            clock,
            disk,
            segments,
            active,
            next_seq,
            acked,
            unacked: 0,
            unsynced_since_ms: None,
            repair_to: None,
            stats: Stats {
                damaged_bytes: report.damaged_bytes,
                damaged_spans: report.damaged_spans,
                ..Stats::default()
            },
            scratch: Vec::new(),
        };
        queue.drop_acked_front(queue.acked)?;
        queue.recount_unacked()?;
        let now = queue.clock.now_ms();
        queue.evict_expired(now)?;
        report.records = queue.unacked;
        Ok((queue, report))
    }
}
