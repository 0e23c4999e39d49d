//! Link statistics per device and UTC day (issue 15, the console's device
//! page: "windows/day, bytes/day, TLS full/resumed").
//!
//! Table `link_days` (SQLite migration 12, PostgreSQL 7): one row per
//! `(device_id, day, link)`, `day` the server's UTC day `YYYY-MM-DD` of the
//! write, `link` one of `tls`, `udp`, `lorawan`, `sbd`. Every write adds to
//! the counters (an upsert):
//!
//! - `windows`: TLS connections of a device certificate that carried at
//!   least one request of the device (counted on its first request);
//!   `tls_full` / `tls_resumed`: the handshake kind of those connections.
//! - `frames`: authenticated sealed frames (fresh and duplicates) over UDP,
//!   LoRaWAN or SBD.
//! - `bytes_up`: request bodies as received (compressed), datagram / uplink
//!   payloads; `bytes_down`: response bodies, sealed answers handed to the
//!   link (on LoRaWAN only the answers a frame asked for).
//!
//! Where it is written: a batch's counters go into the batch's transaction
//! ([`super::Contact::usage`]), a frame's into the frame's
//! ([`super::FrameWrite::usage`]); Flotta JSON routes have no transaction of
//! their own and add theirs with [`super::Store::add_link_usage`]. An
//! answer is made after its transaction committed, so its bytes (and a
//! duplicate answered from the answer cache without the store) wait in
//! memory ([`crate::link_stats::LinkTally`]) for the device's next write on
//! that link, and count on that write's day: a restart loses at most the
//! last answer per device and link.
//!
//! Rows go with a purge (`decommission --purge`), with the device row
//! (foreign key, `ON DELETE CASCADE`), and with retention: days older than
//! `record_retention_days` ([`super::Store::delete_expired_link_days`]).

/// Counters to add to one `(device, day, link)` row, or read from one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkUsage {
    /// TLS upload windows (connections with a request of the device).
    pub windows: u64,
    /// Of those, opened with a full handshake.
    pub tls_full: u64,
    /// Of those, resumed from a session ticket.
    pub tls_resumed: u64,
    /// Sealed frames received (fresh and duplicates).
    pub frames: u64,
    /// Bytes received from the device (bodies, datagrams, uplink payloads).
    pub bytes_up: u64,
    /// Bytes sent to the device (response bodies, sealed answers).
    pub bytes_down: u64,
}

impl LinkUsage {
    /// Nothing to count.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Add `other` to these counters (saturating).
    pub fn add(&mut self, other: &LinkUsage) {
        self.windows = self.windows.saturating_add(other.windows);
        self.tls_full = self.tls_full.saturating_add(other.tls_full);
        self.tls_resumed = self.tls_resumed.saturating_add(other.tls_resumed);
        self.frames = self.frames.saturating_add(other.frames);
        self.bytes_up = self.bytes_up.saturating_add(other.bytes_up);
        self.bytes_down = self.bytes_down.saturating_add(other.bytes_down);
    }
}

/// One stored row: a device's usage of one link on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDay {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// `tls`, `udp`, `lorawan` or `sbd`.
    pub link: String,
    /// Its counters.
    pub usage: LinkUsage,
}

/// The link name of TLS traffic (batch and Flotta JSON routes).
pub const TLS_LINK: &str = "tls";

/// The UTC day (`YYYY-MM-DD`) of `now_ms` (ms since the Unix epoch).
pub fn utc_day(now_ms: u64) -> String {
    let secs = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}
