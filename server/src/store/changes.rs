//! The store's change feed: what changed since a cursor, for the
//! incremental controller pass (`controller/incremental.rs`).
//!
//! Triggers in the database (migration 7 in SQLite, 2 in PostgreSQL; the
//! device trigger as replaced by migrations 8 and 3, which add the upload
//! interval) mark,
//! in the transaction of the write itself, every device row whose change
//! matters to the controller and every object whose body changed outside
//! `status`, so a change made through any replica or tool is seen by the
//! leader. What marks a device:
//!
//! - a new row, and any change of its namespace, approval, registration,
//!   labels, hardware, status (`up`/`degraded`), enrolment time or
//!   decommissioning;
//! - a change of the upload interval the device reported (it moves the
//!   presence deadline); a batch repeating the same interval marks nothing;
//! - a heartbeat whose `workloads` (or whose being a JSON object) differs
//!   from the previous one's: what the EdgeDevice status copies of it;
//! - a change of "last seen" when the device had never been seen, or when
//!   the controller had asked to be told ([`Store::wake_on_contact`]: it
//!   judged the device offline). A heartbeat of an online device that only
//!   moves "last seen" marks nothing.
//!
//! SQLite numbers changes with a counter (one writer: the counter's order is
//! the commit order); PostgreSQL records the writing transaction's id and a
//! cursor is a transaction snapshot (`pg_current_snapshot()`), so a change
//! committed late by a transaction that started early is still found
//! (a sequence would let it slip below a cursor already advanced).
//!
//! [`Store::wake_on_contact`]: super::Store::wake_on_contact

use super::StoreError;
use crate::device_id::DeviceId;

/// A position in the change feed; opaque (a counter in SQLite, a transaction
/// snapshot in PostgreSQL) and only meaningful to the store that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCursor(pub(crate) String);

/// An object, by (kind, namespace, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Kind, as spelt in manifests.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// What changed between a cursor and [`StoreChanges::cursor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreChanges {
    /// Devices whose row changed in a way that matters to the controller.
    pub devices: Vec<DeviceId>,
    /// Objects created, deleted, or changed outside their `status`.
    pub objects: Vec<ObjectKey>,
    /// Where the next call starts.
    pub cursor: ChangeCursor,
}

impl StoreChanges {
    /// A device id as stored.
    pub(crate) fn device_id(stored: &str) -> Result<DeviceId, StoreError> {
        DeviceId::parse(stored).map_err(|e| StoreError::OutOfRange(format!("stored {e}")))
    }

    /// No changes, only a cursor (the first call).
    pub(crate) fn start(cursor: String) -> Self {
        Self {
            devices: Vec::new(),
            objects: Vec::new(),
            cursor: ChangeCursor(cursor),
        }
    }
}

/// A device the controller judged offline, with the "last seen" it judged
/// from ([`super::Store::wake_on_contact`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenAt {
    /// The device.
    pub id: DeviceId,
    /// Its "last seen" when judged (ms since the Unix epoch).
    pub last_seen_ms: Option<u64>,
}
