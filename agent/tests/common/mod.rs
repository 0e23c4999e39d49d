//! Helpers shared by the queue's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use flotta_agent::clock::ManualClock;
use flotta_agent::queue::{DiskSpace, Queue, QueueConfig};

/// A disk whose free space the test sets.
#[derive(Debug, Clone)]
pub struct FakeDisk(pub Arc<AtomicU64>);

impl FakeDisk {
    pub fn plenty() -> Self {
        FakeDisk(Arc::new(AtomicU64::new(u64::MAX / 2)))
    }
    pub fn set_free(&self, bytes: u64) {
        self.0.store(bytes, Ordering::SeqCst);
    }
}

impl DiskSpace for FakeDisk {
    fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

pub type TestQueue = Queue<ManualClock, FakeDisk>;

/// Small segments so that tests cross segment boundaries often.
pub fn small_config() -> QueueConfig {
    QueueConfig {
        segment_bytes: 512,
        max_total_bytes: 1 << 30,
        max_record_age_seconds: 0,
        min_free_disk_bytes: 0,
        max_record_bytes: 64,
        group_commit_max_delay_ms: 100,
    }
}

pub fn open(dir: &Path, cfg: QueueConfig) -> TestQueue {
    Queue::open(dir, cfg, ManualClock::new(1_000_000), FakeDisk::plenty())
        .expect("open")
        .0
}

/// Deterministic payload for a sequence number, so corruption is detected.
pub fn payload_for(seq: u64) -> Vec<u8> {
    let len = (seq * 7 % 40) as usize + 1;
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Sequence numbers of everything unacknowledged.
pub fn all_seqs(q: &mut TestQueue) -> Vec<u64> {
    q.read_batch(usize::MAX, usize::MAX)
        .expect("read")
        .iter()
        .map(|r| r.seq)
        .collect()
}

/// A temporary directory on tmpfs when there is one: for tests of logic, not
/// of durability, where thousands of fsyncs would only cost time.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

/// xorshift64*: enough randomness for kill timing, no dependency.
pub struct Rng(u64);
impl Rng {
    pub fn seeded() -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64;
        Rng(t ^ u64::from(std::process::id()) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
