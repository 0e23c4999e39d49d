//! Errors of the on-disk queue.

use std::io;
use std::path::PathBuf;

/// What can go wrong with the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue is at its byte bound or the disk at its free-space floor, and
    /// eviction could not make room for this record.
    #[error("queue full: {needed_bytes} bytes needed, nothing left to evict")]
    Full {
        /// Size of the frame that did not fit.
        needed_bytes: u64,
    },
    /// A record larger than `max_record_bytes`.
    #[error("record of {len} bytes exceeds max_record_bytes = {max}")]
    RecordTooLarge {
        /// Payload length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// The configuration is inconsistent.
    #[error("invalid queue configuration: {0}")]
    Config(String),
    /// An I/O error on a queue file.
    #[error("queue I/O on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl QueueError {
    /// Whether trying the same operation later may succeed (the disk may have
    /// room later; an oversized record or a bad configuration never will).
    pub fn is_retriable(&self) -> bool {
        match self {
            QueueError::Full { .. } => true,
            QueueError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
            ),
            QueueError::RecordTooLarge { .. } | QueueError::Config(_) => false,
        }
    }

    /// Wrap an I/O error on `path`; a full file system becomes [`QueueError::Full`].
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> QueueError {
        let path = path.into();
        move |source| {
            if source.kind() == io::ErrorKind::StorageFull {
                QueueError::Full { needed_bytes: 0 }
            } else {
                QueueError::Io { path, source }
            }
        }
    }
}
