//! What a batch says about the device's contact besides its records: when
//! the server heard from it, and within how long it will be heard from next
//! (the upload interval it reported, batch format 3), which presence counts;
//! and what its request adds to the link statistics.

/// The contact a batch makes ([`super::Store::ingest_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// When the server heard from the device (ms since the Unix epoch):
    /// its new "last seen".
    pub at_ms: u64,
    /// The upload interval the device reported: its next window opens
    /// within this many seconds unless it is offline. `None` (batch formats
    /// 1 and 2) leaves the stored interval as it is.
    pub upload_interval_seconds: Option<u32>,
    /// What the batch adds to the device's `tls` link statistics of the
    /// day of `at_ms` (`link_days.rs`), in the batch's transaction.
    pub usage: super::LinkUsage,
}

impl Contact {
    /// A contact at `at_ms` that says nothing about the next one.
    pub fn at(at_ms: u64) -> Self {
        Self {
            at_ms,
            upload_interval_seconds: None,
            usage: super::LinkUsage::default(),
        }
    }

    /// A contact at `at_ms` whose next window opens within
    /// `upload_interval_seconds`.
    pub fn with_interval(at_ms: u64, upload_interval_seconds: u32) -> Self {
        Self {
            at_ms,
            upload_interval_seconds: Some(upload_interval_seconds),
            usage: super::LinkUsage::default(),
        }
    }
}
