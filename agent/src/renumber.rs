//! Sequence numbers after a lost queue. A queue created from nothing (first
//! boot, or its directory wiped or replaced) numbers records from 0 again,
//! while the server may hold records of this device up to some higher
//! number and would take the new ones for duplicates of those: acknowledged
//! and dropped. So a queue created from nothing leaves a marker, and the
//! first upload window after it asks the server what it holds (an empty
//! batch) before sending anything; records whose numbers the server has
//! already seen are appended again above them, with their original
//! timestamps (as the queue reads them: corrected if agent time has
//! learnt they were early, `agent_time/restamp.rs`), and the old copies
//! are acknowledged away.
//!
//! A power loss between appending the copies and acknowledging the old ones
//! sends those records twice (never zero times).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::clock::Clock;
use crate::queue::{DiskSpace, Queue, QueueError, Recovery};

/// Marker file under the data directory.
pub const MARKER: &str = "queue.unsynced";

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join(MARKER)
}

/// Leave the marker if `recovery` found no queue at all.
pub fn mark_if_new(data_dir: &Path, recovery: &Recovery) -> std::io::Result<()> {
    if recovery.segments == 0 {
        crate::fsutil::write_atomic(&marker(data_dir), b"", 0o644)?;
    }
    Ok(())
}

/// Whether the next window must ask the server first.
pub fn pending(data_dir: &Path) -> bool {
    marker(data_dir).exists()
}

/// Move records numbered at or below `server_holds` (what the server
/// answered for the empty batch) above it, then remove the marker. Returns
/// how many records were renumbered.
pub fn resolve<C: Clock, D: DiskSpace>(
    queue: &Mutex<Queue<C, D>>,
    server_holds: Option<u64>,
    data_dir: &Path,
) -> Result<u64, QueueError> {
    let mut moved = 0;
    if let Some(held) = server_holds {
        let mut q = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let colliding: Vec<_> = q
            .read_batch(usize::MAX, usize::MAX)?
            .into_iter()
            .filter(|r| r.seq <= held)
            .collect();
        q.ensure_next_seq_at_least(held.saturating_add(1))?;
        for r in &colliding {
            q.append_renumbered(r.class, &r.payload, r.at_ms)?;
        }
        if let Some(last) = colliding.last() {
            q.ack(last.seq)?;
        }
        moved = colliding.len() as u64;
    }
    let path = marker(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(QueueError::io(&path)(e)),
    }
    Ok(moved)
}
