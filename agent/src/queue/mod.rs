//! Durable on-disk queue for heartbeats, logs and events.
//!
//! While the link is down (minutes to weeks) everything the device produces
//! waits here and survives power loss; it is deleted only after the server
//! acknowledged it.
//!
//! # On disk
//! A directory of append-only segment files named by the lowest sequence
//! number they may hold (`00000000000000000042.seg`). Each is a run of frames
//! (see `frame.rs`: magic, length, CRC-32, postcard body) holding either a data
//! record (`seq`, time, class, payload) or an acknowledgement marker
//! (`through`). Acknowledgements are appended like records: nothing is ever
//! rewritten in place, which keeps SD cards and raw flash happy.
//!
//! # Invariants
//! - Sequence numbers strictly increase over the queue's life, across restarts
//!   and deletions: the active segment's name carries the counter even when
//!   every record is gone.
//! - `append(.., Durable)` and `ack` return only after an fsync covers them;
//!   a new segment, a rename and a deletion are followed by a directory fsync.
//! - Segments are deleted oldest first, and only once everything in them is
//!   acknowledged, so the newest acknowledgement marker always survives the
//!   data it acknowledges; after `ack(n)` no record `<= n` is returned again.
//! - Recovery never panics on any bytes: damaged spans are skipped and counted,
//!   every verified frame before and after them is kept, and a torn tail of the
//!   last segment is cut off before anything is appended after it.
//! - The queue stays within `max_total_bytes` and keeps `min_free_disk_bytes`
//!   free, evicting by the policy in `evict.rs` and counting what it dropped.

mod config;
mod disk;
mod error;
mod evict;
mod frame;
mod log;
mod recover;
mod segment;
mod stats;

pub use config::QueueConfig;
pub use disk::{DiskSpace, StatVfs};
pub use error::QueueError;
pub use log::{Durability, Queue, Record};
pub use recover::Recovery;
pub use stats::Stats;

/// Entry point for the fuzz target and property tests of the recovery path:
/// write `bytes` as a segment file into an empty `dir`, open the queue, read
/// everything back and acknowledge it. Must never panic.
pub fn fuzz_recover(dir: &std::path::Path, bytes: &[u8]) -> Result<Recovery, QueueError> {
    use crate::clock::Clock;
    struct Fixed;
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            1_000
        }
    }
    struct Plenty;
    impl DiskSpace for Plenty {
        fn free_bytes(&self, _: &std::path::Path) -> std::io::Result<u64> {
            Ok(u64::MAX)
        }
    }
    std::fs::create_dir_all(dir).map_err(QueueError::io(dir))?;
    let path = segment::segment_path(dir, 0, segment::SEGMENT_EXT);
    std::fs::write(&path, bytes).map_err(QueueError::io(&path))?;
    let (mut q, report) = Queue::open(dir, QueueConfig::default(), Fixed, Plenty)?;
    let batch = q.read_batch(usize::MAX, usize::MAX)?;
    if let Some(last) = batch.last() {
        q.ack(last.seq)?;
    }
    q.append(
        flotta_proto::record::RecordClass::Event,
        b"after",
        Durability::Durable,
    )?;
    Ok(report)
}
