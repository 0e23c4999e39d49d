//! What the store offers the retention task (`crate::retention`): finding
//! devices with records older than a cutoff without scanning their rows,
//! and deleting them in small transactions.
//!
//! Age is the server's `received_ms`, not the device's clock (a device
//! with a wrong clock cannot make its records vanish, or stay forever).
//!
//! - [`Store::retention_page`] looks at a page of devices by id and, per
//!   device, at its *first* record by `seq` and its highest `seq` (three
//!   primary-key probes, whatever the device holds): a device is a
//!   candidate when that first record is older than the cutoff and is not
//!   its newest. A fleet with nothing old costs one probe per device.
//! - [`Store::delete_expired_records`] deletes, in one transaction, the
//!   old ones among the device's first `limit` records by `seq`, never the
//!   record holding the highest `seq` (it *is* [`Store::acked_through`]:
//!   deleting it would let the device's sequence numbers go back). Records
//!   are uploaded in about `seq` order, so the old ones form a prefix; the
//!   caller stops at a chunk that was not all old, and a straggler behind a
//!   younger record waits for the next pass after that one ages.
//! - [`Store::delete_expired_json_events`] deletes the oldest events of
//!   Flotta JSON heartbeats by the arrival index (`json_events_arrival`).
//!
//! Audit records are never deleted.

use crate::device_id::DeviceId;

#[cfg(doc)]
use super::Store;

/// One page of [`Store::retention_page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPage {
    /// Devices of the page with records to delete, by id.
    pub candidates: Vec<DeviceId>,
    /// Devices looked at (the page's size, or fewer at the end).
    pub looked_at: usize,
    /// The last device looked at: the next page starts after it; `None`
    /// when this page reached the end of the devices.
    pub next: Option<DeviceId>,
}

/// What one [`Store::delete_expired_records`] transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiredChunk {
    /// Records deleted.
    pub deleted: usize,
    /// Every record examined was old and deleted, and the limit was
    /// reached: the device may have more.
    pub more: bool,
}
