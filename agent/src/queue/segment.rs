//! Segment files: naming, durable file-system operations, and the per-segment
//! summary the queue keeps in memory instead of an index of every record.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use flotta_proto::record::RecordClass;

use super::QueueError;
use super::frame::{Entry, Scanner};

/// Extension of live segment files.
pub(crate) const SEGMENT_EXT: &str = "seg";
/// Extension of a compaction in progress (deleted at recovery).
pub(crate) const COMPACT_EXT: &str = "compact";

/// What the queue remembers about one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Lowest sequence number the segment may hold (its file name).
    pub base: u64,
    /// Bytes on disk.
    pub len: u64,
    /// Lowest data sequence number in it.
    pub first_data: Option<u64>,
    /// Highest data sequence number in it.
    pub last_data: Option<u64>,
    /// Data records per class, acknowledged or not.
    pub counts: [u64; 3],
    /// Production time of the newest data record.
    pub newest_at_ms: u64,
    /// Highest acknowledgement marker in it.
    pub max_ack: Option<u64>,
    /// Offset before which every data record is known to be acknowledged.
    pub acked_prefix: u64,
}

impl Segment {
    /// An empty segment.
    pub(crate) fn empty(base: u64) -> Self {
        Segment {
            base,
            len: 0,
            first_data: None,
            last_data: None,
            counts: [0; 3],
            newest_at_ms: 0,
            max_ack: None,
            acked_prefix: 0,
        }
    }

    /// Account for one entry found at or appended to the segment's end.
    pub(crate) fn note(&mut self, entry: &Entry<'_>, frame_end: u64) {
        match *entry {
            Entry::Data {
                seq, at_ms, class, ..
            } => {
                self.first_data = Some(self.first_data.map_or(seq, |f| f.min(seq)));
                self.last_data = Some(self.last_data.map_or(seq, |l| l.max(seq)));
                self.counts[class.index()] += 1;
                self.newest_at_ms = self.newest_at_ms.max(at_ms);
            }
            Entry::Ack { through } => {
                self.max_ack = Some(self.max_ack.map_or(through, |a| a.max(through)));
            }
        }
        self.len = self.len.max(frame_end);
    }

    /// Data records in the segment.
    pub(crate) fn data_records(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Records of classes that eviction may drop at `level` (heartbeats only at
    /// level 0, heartbeats and logs at level 1).
    pub(crate) fn evictable(&self, level: RecordClass) -> u64 {
        RecordClass::ALL
            .iter()
            .filter(|c| **c <= level)
            .map(|c| self.counts[c.index()])
            .sum()
    }

    /// Whether every data record is at or below `acked`.
    pub(crate) fn fully_acked(&self, acked: Option<u64>) -> bool {
        match (self.last_data, acked) {
            (None, _) => true,
            (Some(last), Some(acked)) => last <= acked,
            (Some(_), None) => false,
        }
    }

    /// Whether no data record is at or below `acked`.
    pub(crate) fn none_acked(&self, acked: Option<u64>) -> bool {
        match (self.first_data, acked) {
            (None, _) | (_, None) => true,
            (Some(first), Some(acked)) => first > acked,
        }
    }

    /// Scan a segment's bytes into its summary.
    pub(crate) fn from_bytes(base: u64, bytes: &[u8]) -> ScannedSegment {
        let mut seg = Segment::empty(base);
        let mut scan = Scanner::new(bytes, 0);
        let mut valid_end = 0;
        for found in scan.by_ref() {
            valid_end = found.offset + found.len;
            seg.note(&found.entry, valid_end as u64);
        }
        seg.len = bytes.len() as u64;
        ScannedSegment {
            segment: seg,
            damaged_bytes: scan.damaged_bytes(),
            damaged_spans: scan.damaged_spans(),
            valid_end: valid_end as u64,
        }
    }
}

/// A segment summary plus what its scan found damaged.
#[derive(Debug, Clone)]
pub(crate) struct ScannedSegment {
    /// The summary.
    pub segment: Segment,
    /// Bytes that are not part of a verified frame.
    pub damaged_bytes: u64,
    /// Separate damaged spans.
    pub damaged_spans: u64,
    /// End of the last verified frame: anything after it is a torn tail.
    pub valid_end: u64,
}

/// File name of the segment starting at `base`.
pub(crate) fn segment_path(dir: &Path, base: u64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// Parse a directory entry's name into (base, extension) if it is one of ours.
pub(crate) fn parse_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Read a whole segment file.
pub(crate) fn read_all(path: &Path) -> Result<Vec<u8>, QueueError> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(QueueError::io(path))?;
    Ok(buf)
}

/// Open (creating) a segment for appending.
pub(crate) fn open_append(path: &Path) -> Result<File, QueueError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(QueueError::io(path))
}

/// fsync a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(QueueError::io(dir))
}

/// Write `bytes` to `tmp`, fsync it, rename it over `dst`, fsync the directory.
pub(crate) fn replace_durably(
    dir: &Path,
    tmp: &Path,
    dst: &Path,
    bytes: &[u8],
) -> Result<(), QueueError> {
    // On failure the temporary file goes and `dst` stays untouched.
    let written = fs::write(tmp, bytes).and_then(|()| File::open(tmp)?.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(QueueError::io(tmp)(e));
    }
    fs::rename(tmp, dst).map_err(QueueError::io(dst))?;
    sync_dir(dir)
}
