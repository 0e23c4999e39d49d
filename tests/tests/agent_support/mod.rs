//! Helpers the end-to-end tests with real agents share: the wall clock and
//! the state of a stopped agent's on-disk queue.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its part

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use flotta_agent::clock::SystemClock;
use flotta_agent::queue::{Queue, QueueConfig, StatVfs};

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// (next sequence number, unacknowledged records) of an agent's queue, read
/// while the agent is stopped.
pub(crate) fn agent_queue(data_dir: &Path) -> (u64, u64) {
    let cfg = QueueConfig {
        min_free_disk_bytes: 0,
        ..QueueConfig::default()
    };
    let (q, _) = Queue::open(&data_dir.join("queue"), cfg, SystemClock, StatVfs).unwrap();
    (q.next_seq(), q.stats().records)
}
