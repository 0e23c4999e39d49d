//! The device store: devices and their enrolment state, records uploaded by
//! devices, desired device configuration, generic JSON objects (for the
//! CRD controller) and sealed-frame contexts (`frames.rs`), and link
//! addresses bound to devices with their SBD facts (`links.rs`), and link
//! statistics per device and UTC day (`link_days.rs`).
//!
//! [`Store`] is a blocking interface; async code calls it through
//! `tokio::task::spawn_blocking`. The default backend is [`SqliteStore`]
//! (see `server/STORE.md` for why SQLite); [`PostgresStore`] lets several
//! server replicas share one PostgreSQL database (`store = "postgres"`).

mod audit;
mod changes;
mod contact;
mod error;
mod feed;
mod feed_sql;
mod frames;
mod history;
mod link_days;
mod links;
mod postgres;
mod retention;
mod sqlite;
mod timed;

use std::collections::BTreeMap;
use std::fmt::Debug;

use flotta_proto::frame_keys::FrameKeys;
use flotta_proto::record::RecordClass;
use serde_json::Value;

use crate::device_id::{DeviceId, Namespace};

pub use audit::{AuditEntry, AuditRecord};
pub use changes::{ChangeCursor, ObjectKey, SeenAt, StoreChanges};
pub use contact::Contact;
pub use error::StoreError;
pub use feed::{FeedKey, FeedKind, FeedOrder, FeedQuery, FeedRow, Follower, OVERLAP_MS, POLL_SCAN};
pub use frames::{FrameIngested, FrameLinkStatus, FrameVerdict, FrameWrite, StoredFrameContext};
pub use history::{HeartbeatHistory, HeartbeatSample, decode_sample};
pub use link_days::{LinkDay, LinkUsage, TLS_LINK, utc_day};
pub use links::{LinkBinding, LoraUplinkFacts, LorawanStatus, SbdStatus, SbdUplink, sbd_credits};
pub use postgres::test_db::Cluster as TestPostgresCluster;
pub use postgres::{PostgresSettings, PostgresStore};
pub use retention::{ExpiredChunk, RetentionPage};
pub use sqlite::SqliteStore;
pub use timed::TimedStore;

/// Whether an operator (or auto-approval) has accepted an enrolled device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Enrolled, waiting for approval.
    Pending,
    /// Approved: the device may register and receive a certificate.
    Approved,
}

/// A device as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Its id.
    pub id: DeviceId,
    /// Namespace it was enrolled into.
    pub namespace: Namespace,
    /// Approval state.
    pub approval: Approval,
    /// A device certificate has been issued at least once.
    pub registered: bool,
    /// The device has authenticated with its own certificate at least once;
    /// from then on the registration certificate may no longer register it.
    pub cert_used: bool,
    /// Labels (set by operators and from hardware information).
    pub labels: BTreeMap<String, String>,
    /// Hardware information as sent by the device (Flotta `hardware-info`).
    pub hardware: Option<Value>,
    /// Last reported status: `up` or `degraded`.
    pub status: Option<String>,
    /// Last heartbeat, as JSON.
    pub last_heartbeat: Option<Value>,
    /// When the server last heard from the device (ms since the Unix epoch).
    pub last_seen_ms: Option<u64>,
    /// The upload interval the device reported in its last batch that said
    /// one (batch format 3; Flotta JSON heartbeats and sealed frames leave
    /// it as it is): presence counts it.
    pub contact_interval_seconds: Option<u32>,
    /// When the device first enrolled (ms since the Unix epoch).
    pub enrolled_at_ms: u64,
    /// Serial (hex) of the device's current certificate; `None` before its
    /// first registration, and for devices registered before serials were
    /// recorded (until their first renewal).
    pub cert_serial: Option<String>,
    /// `notAfter` of the current certificate (ms since the Unix epoch).
    pub cert_not_after_ms: Option<u64>,
    /// Set once an operator decommissioned the device, until it enrols again.
    pub decommissioned: Option<Decommissioned>,
}

/// Who decommissioned a device, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decommissioned {
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// The actor as given by the admin client (not authenticated).
    pub by: String,
}

/// A certificate the server just issued to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Its serial, hex (as [`crate::pki::ClientIdentity::serial`]).
    pub serial: String,
    /// Its `notAfter`, ms since the Unix epoch.
    pub not_after_ms: u64,
    /// Issued by a renewal (the device's own certificate asked), which also
    /// records that the device uses its own certificate. Either way, the
    /// device's first certificate is current at once, and a later one is
    /// accepted next to the current one until its first use, which
    /// supersedes the current one.
    pub renewal: bool,
}

/// How the store judges a device certificate presented on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStanding {
    /// The device's current certificate.
    Current,
    /// The renewed certificate, used for the first time: it is now the
    /// current one and the previous one is superseded.
    Promoted,
    /// A device registered before serials were recorded: accepted until its
    /// first renewal.
    Legacy,
    /// Not the device's current or renewed certificate: superseded (or never
    /// the device's at all).
    Superseded,
    /// The device is decommissioned: every certificate of it is refused.
    Revoked(Decommissioned),
    /// The device is not in the store.
    UnknownDevice,
}

/// What [`Store::enrol_again_if_lapsed`] and decommissioning delete with the
/// device's state: its EdgeDeviceSignedRequest and EdgeDevice (kinds as
/// stored), so that the controller does not copy an old approval back.
pub const ENROLMENT_OBJECT_KINDS: [&str; 2] = ["EdgeDeviceSignedRequest", "EdgeDevice"];

/// What an enrolment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolOutcome {
    /// A new device was created, approved right away or pending.
    Created(Approval),
    /// The device was already enrolled and is still pending approval.
    StillPending,
    /// The device was already enrolled and approved.
    AlreadyApproved,
}

/// A record to store, as uploaded by a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Per-device sequence number.
    pub seq: u64,
    /// Device timestamp, ms since the Unix epoch.
    pub at_ms: u64,
    /// Heartbeat, log or event.
    pub class: RecordClass,
    /// The record's postcard payload, exactly as received.
    pub payload: Vec<u8>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record as uploaded.
    pub record: NewRecord,
    /// When the server stored it, ms since the Unix epoch.
    pub received_ms: u64,
}

/// An event from a Flotta JSON heartbeat, which has no sequence number.
/// Identified by (device, `at_ms`, `index`, `payload`), so a retried
/// heartbeat stores it once (see `decode::heartbeat_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonEvent {
    /// The heartbeat's `sent` time, ms since the Unix epoch.
    pub at_ms: u64,
    /// Position in the heartbeat's `events`.
    pub index: u32,
    /// `Payload::Event`, postcard, as in an event record of a batch.
    pub payload: Vec<u8>,
}

/// An event of a device, from a batch or a Flotta heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    /// When it happened (device time), ms since the Unix epoch.
    pub at_ms: u64,
    /// When the server stored it, ms since the Unix epoch.
    pub received_ms: u64,
    /// `Payload::Event` (or `Payload::Log` from [`Store::logs`]), postcard.
    pub payload: Vec<u8>,
}

/// A status report to apply to a device.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// `up` or `degraded`.
    pub status: String,
    /// The heartbeat as JSON.
    pub heartbeat: Value,
    /// Hardware information, when the heartbeat carries it.
    pub hardware: Option<Value>,
    /// Sequence number of the heartbeat record (batch route); an update with
    /// a sequence number not above the last applied one is ignored.
    pub seq: Option<u64>,
}

/// Desired configuration of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Version, increased by one on every change ("0" = never set).
    pub version: String,
    /// The `device-configuration-message` fields other than `device_id` and
    /// `version` (`configuration`, `workloads`, ...), as a JSON object.
    pub spec: Value,
}

/// A stored generic object (e.g. a CRD object), keyed by (kind, namespace, name).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// Object kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object.
    pub body: Value,
}

/// Durable storage for the server. Every write is committed (and, for the
/// SQLite backend, fsynced) before the method returns.
pub trait Store: Debug + Send + Sync {
    /// Cheap check that the store answers (for `/readyz`).
    fn ping(&self) -> Result<(), StoreError>;

    /// Enrol a device, or report what an earlier enrolment decided. A new
    /// device is approved at once when `auto_approve` is set.
    fn enrol(
        &self,
        id: &DeviceId,
        namespace: &Namespace,
        hardware: Option<&Value>,
        auto_approve: bool,
        now_ms: u64,
    ) -> Result<EnrolOutcome, StoreError>;

    /// Approve a pending device. Approving an approved device changes nothing.
    fn approve(&self, id: &DeviceId) -> Result<(), StoreError>;

    /// The device, if enrolled.
    fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError>;

    /// All devices, ordered by id.
    fn devices(&self) -> Result<Vec<Device>, StoreError>;

    /// Record that a certificate was issued to the device; `hardware` replaces
    /// the stored hardware information when given.
    fn mark_registered(
        &self,
        id: &DeviceId,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Record that the device authenticated with its own certificate.
    fn mark_cert_used(&self, id: &DeviceId) -> Result<(), StoreError>;

    /// Apply a status report (Flotta JSON heartbeat) with its events, and
    /// update "last seen", in one transaction. Events already stored (a
    /// retried heartbeat) are not stored again. Only devices send status,
    /// with their own certificate: this also records that the device
    /// certificate is in use.
    fn update_status(
        &self,
        id: &DeviceId,
        update: &StatusUpdate,
        events: &[JsonEvent],
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// The newest `limit` events of a device, from batches and Flotta
    /// heartbeats alike, oldest first.
    fn events(&self, id: &DeviceId, limit: usize) -> Result<Vec<DeviceEvent>, StoreError>;

    /// Up to `limit` log records of a device (`payload` a `Payload::Log`)
    /// with a device time at or after `since_ms`, newest first, after
    /// skipping the `offset` newest: pages for `flotta-server logs`.
    fn logs(
        &self,
        id: &DeviceId,
        since_ms: u64,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<DeviceEvent>, StoreError>;

    /// Events or log lines with a cursor, per device or (events) every
    /// device's, in device-time or arrival order (see `feed.rs`): at most
    /// `q.limit` rows after `q.after` with a device time at or after
    /// `q.since_ms`. Log lines need a device.
    fn feed(&self, q: &FeedQuery) -> Result<Vec<FeedRow>, StoreError>;

    /// Store a batch in one transaction: records are deduplicated by
    /// `(device, seq)`, the status update (if any) is applied, "last seen"
    /// becomes `contact.at_ms`, the reported upload interval (when the batch
    /// says one) is stored, and the device certificate is recorded as in
    /// use. Returns the highest sequence number stored for the device once
    /// the transaction is durable.
    fn ingest_batch(
        &self,
        id: &DeviceId,
        records: &[NewRecord],
        status: Option<&StatusUpdate>,
        contact: Contact,
    ) -> Result<Option<u64>, StoreError>;

    /// The highest sequence number stored for the device.
    fn acked_through(&self, id: &DeviceId) -> Result<Option<u64>, StoreError>;

    /// Stored records of a device with `seq > after`, ascending, at most `limit`.
    fn records(
        &self,
        id: &DeviceId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// The device's desired configuration, if one was ever set.
    fn configuration(&self, id: &DeviceId) -> Result<Option<DeviceConfig>, StoreError>;

    /// Replace the device's desired configuration; returns the new version.
    /// Setting the same spec again keeps the version.
    fn set_configuration(&self, id: &DeviceId, spec: &Value) -> Result<String, StoreError>;

    /// Replace the device's labels.
    fn set_labels(
        &self,
        id: &DeviceId,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), StoreError>;

    /// Create or replace a generic object.
    fn put_object(&self, object: &StoredObject) -> Result<(), StoreError>;

    /// A generic object, if present.
    fn get_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError>;

    /// Objects of a kind (in one namespace, or all when `None`), ordered by
    /// namespace then name.
    fn list_objects(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<StoredObject>, StoreError>;

    /// Delete a generic object; returns whether it existed.
    fn delete_object(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError>;

    /// Record a certificate issued to the device (see
    /// [`IssuedCertificate::renewal`]); marks the device registered and, for
    /// a renewal, its certificate as used; `hardware` replaces the stored
    /// hardware information when given.
    fn record_certificate(
        &self,
        id: &DeviceId,
        cert: &IssuedCertificate,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Judge the certificate with `serial` presented for device `id`; the
    /// first use of a renewed certificate makes it the current one.
    fn certificate_standing(&self, id: &DeviceId, serial: &str)
    -> Result<CertStanding, StoreError>;

    /// Start the enrolment over when the device's current certificate
    /// expired before `lapsed_before_ms` (beyond the renewal grace): the
    /// approval becomes `auto_approve`, the registration certificate may
    /// register it again, and its enrolment objects are deleted. Returns
    /// whether it did.
    fn enrol_again_if_lapsed(
        &self,
        id: &DeviceId,
        lapsed_before_ms: u64,
        auto_approve: bool,
    ) -> Result<bool, StoreError>;

    /// Decommission the device: every certificate of it is refused from now
    /// on, its approval is withdrawn (a later enrolment waits for an
    /// operator whatever `auto_approve` says), its enrolment objects are
    /// deleted, and with `purge` its records, events and configuration too.
    /// `event` (who did it) is stored after the purge.
    fn decommission(
        &self,
        id: &DeviceId,
        actor: &str,
        purge: bool,
        event: &JsonEvent,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// The frame contexts of `key_id`, newest epoch first (at most two);
    /// empty when no device has that key id.
    fn frame_contexts_by_key(&self, key_id: [u8; 4])
    -> Result<Vec<StoredFrameContext>, StoreError>;

    /// The device's frame contexts, newest epoch first (at most two).
    fn frame_contexts(&self, id: &DeviceId) -> Result<Vec<StoredFrameContext>, StoreError>;

    /// Give the device its first frame context, `keys`, unless it has one;
    /// returns its newest context either way. [`StoreError::Conflict`] when
    /// another device has `keys.key_id` (pick another).
    fn create_frame_context(
        &self,
        id: &DeviceId,
        keys: &FrameKeys,
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError>;

    /// Rotate: if the device's newest epoch is `from_epoch` and no older one
    /// is kept, add epoch `from_epoch + 1` with `master_secret` and
    /// `master_salt` under the same key id. Returns the newest context after
    /// the call (the new one, or what another rotation made).
    fn rotate_frame_context(
        &self,
        id: &DeviceId,
        from_epoch: u32,
        master_secret: &[u8; 32],
        master_salt: &[u8],
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError>;

    /// Store one authenticated uplink frame in one transaction: judge its
    /// counter against the persisted replay window; if fresh, store its
    /// records (deduplicated by `(device, seq)` as [`Store::ingest_batch`]
    /// does, with the same status update and "last seen"), merge its
    /// fragments and store the records they complete, mark the counter, and
    /// drop the previous epoch when the frame is under a newer one. A
    /// duplicate only counts; a refusal stores and marks nothing. Durable
    /// before it returns, so the caller may acknowledge.
    fn ingest_frame(&self, frame: &FrameWrite, now_ms: u64) -> Result<FrameIngested, StoreError>;

    /// Persist the downlink counter reservation of (`key_id`, `epoch`):
    /// `next_free`, if the stored value still is `expected`
    /// ([`StoreError::Conflict`] otherwise, or when the context is gone), so
    /// two reservers can never hand out the same counter.
    fn reserve_frame_counters(
        &self,
        key_id: [u8; 4],
        epoch: u32,
        expected: Option<u32>,
        next_free: u32,
    ) -> Result<(), StoreError>;

    /// The sealed-frame facts of a device (for `describe`).
    fn frame_link_status(&self, id: &DeviceId) -> Result<FrameLinkStatus, StoreError>;

    /// Bind `address` to the device (which must exist and not be
    /// decommissioned). Returns false when it was bound to it already;
    /// [`StoreError::AddressBound`] when another device has it.
    fn bind_link(
        &self,
        address: &crate::links::LinkAddress,
        id: &DeviceId,
        now_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Remove the binding of `address`; returns the device it belonged to.
    fn unbind_link(
        &self,
        address: &crate::links::LinkAddress,
    ) -> Result<Option<DeviceId>, StoreError>;

    /// The device `address` is bound to.
    fn linked_device(
        &self,
        address: &crate::links::LinkAddress,
    ) -> Result<Option<DeviceId>, StoreError>;

    /// The addresses bound to the device, by kind and address.
    fn device_links(&self, id: &DeviceId) -> Result<Vec<LinkBinding>, StoreError>;

    /// The device's SBD facts (`None` before its first SBD message).
    fn sbd_status(&self, id: &DeviceId) -> Result<Option<SbdStatus>, StoreError>;

    /// Count `credits` (an MT message accepted by Rock7) on the device's
    /// SBD day `day` (`YYYY-MM-DD`, UTC).
    fn add_sbd_credits(&self, id: &DeviceId, day: &str, credits: u32) -> Result<(), StoreError>;

    /// The device's LoRaWAN facts (`None` before its first LoRaWAN uplink).
    fn lorawan_status(&self, id: &DeviceId) -> Result<Option<LorawanStatus>, StoreError>;

    /// What changed since `cursor` (see `changes.rs` for what marks a
    /// device or an object); with `None`, only a cursor to start from. A
    /// change committed after the returned cursor is in the next call's
    /// answer; one committed before it never is again.
    fn changes_since(&self, cursor: Option<&ChangeCursor>) -> Result<StoreChanges, StoreError>;

    /// Ask to be told of the next contact of these devices (the controller
    /// judged them offline): their next change of "last seen" marks them in
    /// the change feed. A device whose "last seen" is no longer the one
    /// given was heard from meanwhile: nothing is asked for it, and it is
    /// returned (the caller looks at it again).
    fn wake_on_contact(&self, devices: &[SeenAt]) -> Result<Vec<DeviceId>, StoreError>;

    /// Count one downlink the network server accepted for the device on
    /// `day` (`YYYY-MM-DD`, UTC).
    fn add_lorawan_downlink(&self, id: &DeviceId, day: &str) -> Result<(), StoreError>;

    /// The device's heartbeat samples (heartbeat records and window
    /// summaries, see `history.rs`) with a device time in `[from_ms,
    /// to_ms)`, oldest first, at most `limit` records read; payloads that
    /// do not decode are skipped and counted.
    fn heartbeat_history(
        &self,
        id: &DeviceId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<HeartbeatHistory, StoreError>;

    /// Retention (see `retention.rs`): a page of at most `page` devices
    /// after `after` by id, with those holding records received before
    /// `cutoff_ms` that may be deleted (not their newest).
    fn retention_page(
        &self,
        after: Option<&DeviceId>,
        page: usize,
        cutoff_ms: u64,
    ) -> Result<RetentionPage, StoreError>;

    /// Retention: in one transaction, delete the records received before
    /// `cutoff_ms` among the device's first `limit` by seq, never the one
    /// holding its highest seq ([`Store::acked_through`] stays).
    fn delete_expired_records(
        &self,
        id: &DeviceId,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<ExpiredChunk, StoreError>;

    /// Retention: in one transaction, delete at most `limit` events of
    /// Flotta JSON heartbeats received before `cutoff_ms`, oldest first;
    /// returns how many.
    fn delete_expired_json_events(&self, cutoff_ms: u64, limit: usize)
    -> Result<usize, StoreError>;

    /// Add `usage` of `link` to the device's row of the UTC day of
    /// `now_ms` (see `link_days.rs`), alone in its transaction: for routes
    /// that have none of their own.
    fn add_link_usage(
        &self,
        id: &DeviceId,
        link: &str,
        usage: &LinkUsage,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// The device's link statistics from UTC day `since_day` (`YYYY-MM-DD`)
    /// on, by day then link.
    fn link_days(&self, id: &DeviceId, since_day: &str) -> Result<Vec<LinkDay>, StoreError>;

    /// Retention: delete at most `limit` link statistics rows of days
    /// before `before_day`; returns how many.
    fn delete_expired_link_days(&self, before_day: &str, limit: usize)
    -> Result<usize, StoreError>;

    /// Append an audit record of the admin listener.
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` audit records with an id below `before` (all when
    /// `None`), newest first.
    fn audit_log(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
}

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod change_tests;
#[cfg(test)]
mod contact_tests;
#[cfg(test)]
mod feed_tests;
#[cfg(test)]
mod frame_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod link_days_tests;
#[cfg(test)]
mod postgres_concurrency_tests;
#[cfg(test)]
mod postgres_tests;
#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod test_backends;
#[cfg(test)]
mod tests;
