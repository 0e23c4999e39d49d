//! Bounds and tuning of the on-disk queue, with defaults for a Raspberry Pi Zero
//! with an SD card.

use serde::Deserialize;

use super::QueueError;

/// Queue configuration (the `[queue]` table of the agent's TOML file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Size at which the active segment is closed and a new one started.
    pub segment_bytes: u64,
    /// Upper bound of all segment files together.
    pub max_total_bytes: u64,
    /// Records older than this are evicted (0: no age bound).
    pub max_record_age_seconds: u64,
    /// The queue never lets the file system's free space fall below this.
    pub min_free_disk_bytes: u64,
    /// Largest payload accepted.
    pub max_record_bytes: usize,
    /// Longest time a buffered (low-priority) record waits before its fsync.
    pub group_commit_max_delay_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            segment_bytes: 256 * 1024,
            max_total_bytes: 16 * 1024 * 1024,
            max_record_age_seconds: 30 * 24 * 3600,
            min_free_disk_bytes: 32 * 1024 * 1024,
            max_record_bytes: 64 * 1024,
            group_commit_max_delay_ms: 2_000,
        }
    }
}

impl QueueConfig {
    /// Reject inconsistent bounds with a message naming the keys.
    pub fn validate(&self) -> Result<(), QueueError> {
        let frame_max = self.max_record_bytes as u64 + 64;
        if self.segment_bytes < frame_max {
            return Err(QueueError::Config(format!(
                "segment_bytes ({}) must hold at least one record of max_record_bytes ({}) plus framing",
                self.segment_bytes, self.max_record_bytes
            )));
        }
        if self.max_total_bytes < 4 * self.segment_bytes {
            return Err(QueueError::Config(format!(
                "max_total_bytes ({}) must be at least 4 x segment_bytes ({})",
                self.max_total_bytes, self.segment_bytes
            )));
        }
        if self.max_record_bytes > super::frame::MAX_BODY_LEN / 2 {
            return Err(QueueError::Config(format!(
                "max_record_bytes ({}) may be at most {}",
                self.max_record_bytes,
                super::frame::MAX_BODY_LEN / 2
            )));
        }
        Ok(())
    }
}
