//! [`TimedStore`]: a [`Store`] decorator recording each call's latency in
//! the server's metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use flotta_proto::frame_keys::FrameKeys;

use super::{
    CertStanding, ChangeCursor, Contact, Device, DeviceConfig, DeviceEvent, EnrolOutcome,
    FrameIngested, FrameLinkStatus, FrameWrite, IssuedCertificate, JsonEvent, LinkBinding, LinkDay,
    LinkUsage, LorawanStatus, NewRecord, SbdStatus, SeenAt, StatusUpdate, Store, StoreChanges,
    StoreError, StoredFrameContext, StoredObject, StoredRecord,
};
use crate::device_id::{DeviceId, Namespace};
use crate::links::LinkAddress;
use crate::metrics::Metrics;

/// Wraps a store; every call is timed into `flotta_store_operation_seconds`.
#[derive(Debug)]
pub struct TimedStore<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> TimedStore<S> {
    /// Time `inner`'s calls into `metrics`.
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn timed<T>(&self, op: &str, f: impl FnOnce(&S) -> T) -> T {
        let start = Instant::now();
        let out = f(&self.inner);
        self.metrics.observe_store(op, start.elapsed());
        out
    }
}

impl<S: Store> Store for TimedStore<S> {
    fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", |s| s.ping())
    }
    fn enrol(
        &self,
        id: &DeviceId,
        namespace: &Namespace,
        hardware: Option<&Value>,
        auto_approve: bool,
        now_ms: u64,
    ) -> Result<EnrolOutcome, StoreError> {
        self.timed("enrol", |s| {
            s.enrol(id, namespace, hardware, auto_approve, now_ms)
        })
    }
    fn approve(&self, id: &DeviceId) -> Result<(), StoreError> {
        self.timed("approve", |s| s.approve(id))
    }
    fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.timed("device", |s| s.device(id))
    }
    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        self.timed("devices", |s| s.devices())
    }
    fn mark_registered(
        &self,
        id: &DeviceId,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.timed("mark_registered", |s| {
            s.mark_registered(id, hardware, now_ms)
        })
    }
    fn mark_cert_used(&self, id: &DeviceId) -> Result<(), StoreError> {
        self.timed("mark_cert_used", |s| s.mark_cert_used(id))
    }
    fn update_status(
        &self,
        id: &DeviceId,
        update: &StatusUpdate,
        events: &[JsonEvent],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.timed("update_status", |s| {
            s.update_status(id, update, events, now_ms)
        })
    }
    fn events(&self, id: &DeviceId, limit: usize) -> Result<Vec<DeviceEvent>, StoreError> {
        self.timed("events", |s| s.events(id, limit))
    }
    fn logs(
        &self,
        id: &DeviceId,
        since_ms: u64,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<DeviceEvent>, StoreError> {
        self.timed("logs", |s| s.logs(id, since_ms, limit, offset))
    }
    fn feed(&self, q: &super::FeedQuery) -> Result<Vec<super::FeedRow>, StoreError> {
        self.timed("feed", |s| s.feed(q))
    }
    fn ingest_batch(
        &self,
        id: &DeviceId,
        records: &[NewRecord],
        status: Option<&StatusUpdate>,
        contact: Contact,
    ) -> Result<Option<u64>, StoreError> {
        self.timed("ingest_batch", |s| {
            s.ingest_batch(id, records, status, contact)
        })
    }
    fn acked_through(&self, id: &DeviceId) -> Result<Option<u64>, StoreError> {
        self.timed("acked_through", |s| s.acked_through(id))
    }
    fn records(
        &self,
        id: &DeviceId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.timed("records", |s| s.records(id, after, limit))
    }
    fn configuration(&self, id: &DeviceId) -> Result<Option<DeviceConfig>, StoreError> {
        self.timed("configuration", |s| s.configuration(id))
    }
    fn set_configuration(&self, id: &DeviceId, spec: &Value) -> Result<String, StoreError> {
        self.timed("set_configuration", |s| s.set_configuration(id, spec))
    }
    fn set_labels(
        &self,
        id: &DeviceId,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.timed("set_labels", |s| s.set_labels(id, labels))
    }
    fn put_object(&self, object: &StoredObject) -> Result<(), StoreError> {
        self.timed("put_object", |s| s.put_object(object))
    }
    fn get_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        self.timed("get_object", |s| s.get_object(kind, namespace, name))
    }
    fn list_objects(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.timed("list_objects", |s| s.list_objects(kind, namespace))
    }
    fn delete_object(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError> {
        self.timed("delete_object", |s| s.delete_object(kind, namespace, name))
    }
    fn record_certificate(
        &self,
        id: &DeviceId,
        cert: &IssuedCertificate,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.timed("record_certificate", |s| {
            s.record_certificate(id, cert, hardware, now_ms)
        })
    }
    fn certificate_standing(
        &self,
        id: &DeviceId,
        serial: &str,
    ) -> Result<CertStanding, StoreError> {
        self.timed("certificate_standing", |s| {
            s.certificate_standing(id, serial)
        })
    }
    fn enrol_again_if_lapsed(
        &self,
        id: &DeviceId,
        lapsed_before_ms: u64,
        auto_approve: bool,
    ) -> Result<bool, StoreError> {
        self.timed("enrol_again_if_lapsed", |s| {
            s.enrol_again_if_lapsed(id, lapsed_before_ms, auto_approve)
        })
    }
    fn decommission(
        &self,
        id: &DeviceId,
        actor: &str,
        purge: bool,
        event: &JsonEvent,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.timed("decommission", |s| {
            s.decommission(id, actor, purge, event, now_ms)
        })
    }
    fn frame_contexts_by_key(
        &self,
        key_id: [u8; 4],
    ) -> Result<Vec<StoredFrameContext>, StoreError> {
        self.timed("frame_contexts_by_key", |s| s.frame_contexts_by_key(key_id))
    }
    fn frame_contexts(&self, id: &DeviceId) -> Result<Vec<StoredFrameContext>, StoreError> {
        self.timed("frame_contexts", |s| s.frame_contexts(id))
    }
    fn create_frame_context(
        &self,
        id: &DeviceId,
        keys: &FrameKeys,
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError> {
        self.timed("create_frame_context", |s| {
            s.create_frame_context(id, keys, now_ms)
        })
    }
    fn rotate_frame_context(
        &self,
        id: &DeviceId,
        from_epoch: u32,
        master_secret: &[u8; 32],
        master_salt: &[u8],
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError> {
        self.timed("rotate_frame_context", |s| {
            s.rotate_frame_context(id, from_epoch, master_secret, master_salt, now_ms)
        })
    }
    fn ingest_frame(&self, frame: &FrameWrite, now_ms: u64) -> Result<FrameIngested, StoreError> {
        self.timed("ingest_frame", |s| s.ingest_frame(frame, now_ms))
    }
    fn reserve_frame_counters(
        &self,
        key_id: [u8; 4],
        epoch: u32,
        expected: Option<u32>,
        next_free: u32,
    ) -> Result<(), StoreError> {
        self.timed("reserve_frame_counters", |s| {
            s.reserve_frame_counters(key_id, epoch, expected, next_free)
        })
    }
    fn frame_link_status(&self, id: &DeviceId) -> Result<FrameLinkStatus, StoreError> {
        self.timed("frame_link_status", |s| s.frame_link_status(id))
    }
    fn bind_link(
        &self,
        address: &LinkAddress,
        id: &DeviceId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.timed("bind_link", |s| s.bind_link(address, id, now_ms))
    }
    fn unbind_link(&self, address: &LinkAddress) -> Result<Option<DeviceId>, StoreError> {
        self.timed("unbind_link", |s| s.unbind_link(address))
    }
    fn linked_device(&self, address: &LinkAddress) -> Result<Option<DeviceId>, StoreError> {
        self.timed("linked_device", |s| s.linked_device(address))
    }
    fn device_links(&self, id: &DeviceId) -> Result<Vec<LinkBinding>, StoreError> {
        self.timed("device_links", |s| s.device_links(id))
    }
    fn sbd_status(&self, id: &DeviceId) -> Result<Option<SbdStatus>, StoreError> {
        self.timed("sbd_status", |s| s.sbd_status(id))
    }
    fn add_sbd_credits(&self, id: &DeviceId, day: &str, credits: u32) -> Result<(), StoreError> {
        self.timed("add_sbd_credits", |s| s.add_sbd_credits(id, day, credits))
    }

    fn lorawan_status(&self, id: &DeviceId) -> Result<Option<LorawanStatus>, StoreError> {
        self.timed("lorawan_status", |s| s.lorawan_status(id))
    }

    fn add_lorawan_downlink(&self, id: &DeviceId, day: &str) -> Result<(), StoreError> {
        self.timed("add_lorawan_downlink", |s| s.add_lorawan_downlink(id, day))
    }

    fn add_link_usage(
        &self,
        id: &DeviceId,
        link: &str,
        usage: &LinkUsage,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.timed("add_link_usage", |s| {
            s.add_link_usage(id, link, usage, now_ms)
        })
    }

    fn link_days(&self, id: &DeviceId, since_day: &str) -> Result<Vec<LinkDay>, StoreError> {
        self.timed("link_days", |s| s.link_days(id, since_day))
    }

    fn delete_expired_link_days(
        &self,
        before_day: &str,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.timed("delete_expired_link_days", |s| {
            s.delete_expired_link_days(before_day, limit)
        })
    }

    fn changes_since(&self, cursor: Option<&ChangeCursor>) -> Result<StoreChanges, StoreError> {
        self.timed("changes_since", |s| s.changes_since(cursor))
    }

    fn wake_on_contact(&self, devices: &[SeenAt]) -> Result<Vec<DeviceId>, StoreError> {
        self.timed("wake_on_contact", |s| s.wake_on_contact(devices))
    }
    fn heartbeat_history(
        &self,
        id: &DeviceId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<super::HeartbeatHistory, StoreError> {
        self.timed("heartbeat_history", |s| {
            s.heartbeat_history(id, from_ms, to_ms, limit)
        })
    }
    fn retention_page(
        &self,
        after: Option<&DeviceId>,
        page: usize,
        cutoff_ms: u64,
    ) -> Result<super::RetentionPage, StoreError> {
        self.timed("retention_page", |s| {
            s.retention_page(after, page, cutoff_ms)
        })
    }
    fn delete_expired_records(
        &self,
        id: &DeviceId,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<super::ExpiredChunk, StoreError> {
        self.timed("delete_expired_records", |s| {
            s.delete_expired_records(id, cutoff_ms, limit)
        })
    }
    fn delete_expired_json_events(
        &self,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.timed("delete_expired_json_events", |s| {
            s.delete_expired_json_events(cutoff_ms, limit)
        })
    }
    fn append_audit(&self, entry: &crate::store::AuditEntry) -> Result<(), StoreError> {
        self.timed("append_audit", |s| s.append_audit(entry))
    }
    fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<crate::store::AuditRecord>, StoreError> {
        self.timed("audit_log", |s| s.audit_log(before, limit))
    }
}
