//! Helpers the end-to-end tests with real agents (and the wire benchmark)
//! share: the wall clock, the state of a stopped agent's on-disk queue, and
//! what the server stored for a device.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its part

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use flotta_agent::clock::SystemClock;
use flotta_agent::queue::{Queue, QueueConfig, StatVfs};
use flotta_e2e::procs::ServerProc;
use flotta_server::device_id::DeviceId;
use flotta_server::store::{SqliteStore, Store, StoredRecord};

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

/// Every record the server stored for device `id`, in sequence order (read
/// from its SQLite store, also while it runs).
pub(crate) fn stored_records(server: &ServerProc, id: &str) -> Vec<StoredRecord> {
    SqliteStore::open(&server.store_path())
        .unwrap()
        .records(&DeviceId::parse(id).unwrap(), None, 10_000_000)
        .unwrap()
}
