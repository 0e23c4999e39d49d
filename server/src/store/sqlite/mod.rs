//! The embedded single-file store: SQLite in WAL mode with `synchronous=FULL`,
//! so a write that returned has survived a power cut.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use flotta_proto::frame_keys::FrameKeys;

use super::{
    Approval, CertStanding, ChangeCursor, Contact, Device, DeviceConfig, DeviceEvent, EnrolOutcome,
    FrameIngested, FrameLinkStatus, FrameWrite, IssuedCertificate, JsonEvent, LinkBinding, LinkDay,
    LinkUsage, LorawanStatus, NewRecord, SbdStatus, SeenAt, StatusUpdate, Store, StoreChanges,
    StoreError, StoredFrameContext, StoredObject, StoredRecord,
};
use crate::device_id::{DeviceId, Namespace};
use crate::links::LinkAddress;

mod audit;
mod changes;
mod events;
mod feed;
mod fragments;
mod frames;
mod history;
mod identity;
mod link_days;
mod links;
mod logs;
mod lorawan;
mod records;
mod retention;
mod rows;
mod schema;

use records::{apply_status, insert_records, max_seq, require_device};
use rows::{
    DEVICE_COLUMNS, class_from, device_from, device_row, object_from, object_row, to_i64, to_u64,
};

/// SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn)
    }

    /// A private in-memory database (tests, tools).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        schema::prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }
}

impl Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn enrol(
        &self,
        id: &DeviceId,
        namespace: &Namespace,
        hardware: Option<&Value>,
        auto_approve: bool,
        now_ms: u64,
    ) -> Result<EnrolOutcome, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        if identity::enrol_decommissioned(&tx, id, namespace, hardware, now_ms)? {
            tx.commit()?;
            return Ok(EnrolOutcome::Created(Approval::Pending));
        }
        let existing: Option<bool> = tx
            .query_row(
                "SELECT approved FROM devices WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let outcome = match existing {
            Some(true) => EnrolOutcome::AlreadyApproved,
            Some(false) => {
                if let Some(hw) = hardware {
                    tx.execute(
                        "UPDATE devices SET hardware = ?2 WHERE id = ?1",
                        params![id.as_str(), hw.to_string()],
                    )?;
                }
                EnrolOutcome::StillPending
            }
            None => {
                tx.execute(
                    "INSERT INTO devices (id, namespace, approved, hardware, enrolled_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id.as_str(),
                        namespace.as_str(),
                        auto_approve,
                        hardware.map(Value::to_string),
                        to_i64("time", now_ms)?
                    ],
                )?;
                EnrolOutcome::Created(if auto_approve {
                    Approval::Approved
                } else {
                    Approval::Pending
                })
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn approve(&self, id: &DeviceId) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "UPDATE devices SET approved = 1 WHERE id = ?1",
            [id.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        Ok(())
    }

    fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        let row = self
            .conn()?
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [id.as_str()],
                device_row,
            )
            .optional()?;
        row.map(device_from).transpose()
    }

    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"))?;
        let rows = stmt.query_map([], device_row)?;
        rows.map(|r| device_from(r?)).collect()
    }

    fn mark_registered(
        &self,
        id: &DeviceId,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "UPDATE devices SET registered = 1, registered_at_ms = ?2,
                 hardware = COALESCE(?3, hardware)
             WHERE id = ?1",
            params![
                id.as_str(),
                to_i64("time", now_ms)?,
                hardware.map(Value::to_string)
            ],
        )?;
        if n == 0 {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        Ok(())
    }

    fn mark_cert_used(&self, id: &DeviceId) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE devices SET cert_used = 1 WHERE id = ?1 AND cert_used = 0",
            [id.as_str()],
        )?;
        Ok(())
    }

    fn update_status(
        &self,
        id: &DeviceId,
        update: &StatusUpdate,
        events: &[JsonEvent],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now = to_i64("time", now_ms)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        require_device(&tx, id)?;
        events::insert(&tx, id, events, now)?;
        apply_status(&tx, id, update, now)?;
        tx.execute(
            "UPDATE devices SET last_link = 'tls' WHERE id = ?1",
            [id.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn events(&self, id: &DeviceId, limit: usize) -> Result<Vec<DeviceEvent>, StoreError> {
        events::newest(&*self.conn()?, id, limit)
    }

    fn logs(
        &self,
        id: &DeviceId,
        since_ms: u64,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<DeviceEvent>, StoreError> {
        logs::newest(&*self.conn()?, id, since_ms, limit, offset)
    }

    fn feed(&self, q: &super::FeedQuery) -> Result<Vec<super::FeedRow>, StoreError> {
        feed::read(&*self.conn()?, q)
    }

    fn ingest_batch(
        &self,
        id: &DeviceId,
        records: &[NewRecord],
        status: Option<&StatusUpdate>,
        contact: Contact,
    ) -> Result<Option<u64>, StoreError> {
        let now = to_i64("time", contact.at_ms)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        require_device(&tx, id)?;
        insert_records(&tx, id, records, now)?;
        // The row is written for "last seen" anyway; the interval changes
        // only when the batch says a different one (the trigger compares).
        tx.execute(
            "UPDATE devices SET last_seen_ms = ?2, cert_used = 1, last_link = 'tls',
                 contact_interval_seconds = COALESCE(?3, contact_interval_seconds)
             WHERE id = ?1",
            params![id.as_str(), now, contact.upload_interval_seconds],
        )?;
        if let Some(u) = status {
            apply_status(&tx, id, u, now)?;
        }
        let day = crate::store::utc_day(contact.at_ms);
        link_days::add(&tx, id, crate::store::TLS_LINK, &day, &contact.usage)?;
        let acked = max_seq(&tx, id)?;
        tx.commit()?;
        Ok(acked)
    }

    fn acked_through(&self, id: &DeviceId) -> Result<Option<u64>, StoreError> {
        max_seq(&*self.conn()?, id)
    }

    fn records(
        &self,
        id: &DeviceId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at_ms, class, payload, received_ms FROM records
             WHERE device_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let after = after.map_or(Ok(-1), |a| to_i64("seq", a))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![id.as_str(), after, limit], |r| {
            Ok(StoredRecord {
                record: NewRecord {
                    seq: to_u64(r.get(0)?),
                    at_ms: to_u64(r.get(1)?),
                    class: class_from(r.get(2)?),
                    payload: r.get(3)?,
                },
                received_ms: to_u64(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn configuration(&self, id: &DeviceId) -> Result<Option<DeviceConfig>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn()?
            .query_row(
                "SELECT version, spec FROM device_config WHERE device_id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(v, spec)| {
            Ok(DeviceConfig {
                version: v.to_string(),
                spec: serde_json::from_str(&spec)?,
            })
        })
        .transpose()
    }

    fn set_configuration(&self, id: &DeviceId, spec: &Value) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        require_device(&tx, id)?;
        let spec = spec.to_string();
        let current: Option<(i64, String)> = tx
            .query_row(
                "SELECT version, spec FROM device_config WHERE device_id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let version = match current {
            Some((v, old)) if old == spec => v,
            Some((v, _)) => v + 1,
            None => 1,
        };
        tx.execute(
            "INSERT INTO device_config (device_id, version, spec) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id) DO UPDATE SET version = ?2, spec = ?3",
            params![id.as_str(), version, spec],
        )?;
        tx.commit()?;
        Ok(version.to_string())
    }

    fn set_labels(
        &self,
        id: &DeviceId,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "UPDATE devices SET labels = ?2 WHERE id = ?1",
            params![id.as_str(), serde_json::to_string(labels)?],
        )?;
        if n == 0 {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        Ok(())
    }

    fn put_object(&self, o: &StoredObject) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO objects (kind, namespace, name, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, namespace, name) DO UPDATE SET body = ?4",
            params![o.kind, o.namespace, o.name, o.body.to_string()],
        )?;
        Ok(())
    }

    fn get_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let row = self
            .conn()?
            .query_row(
                "SELECT kind, namespace, name, body FROM objects
                 WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                params![kind, namespace, name],
                object_row,
            )
            .optional()?;
        row.map(object_from).transpose()
    }

    fn list_objects(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT kind, namespace, name, body FROM objects
             WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2) ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map(params![kind, namespace], object_row)?;
        rows.map(|r| object_from(r?)).collect()
    }

    fn delete_object(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
            params![kind, namespace, name],
        )?;
        Ok(n > 0)
    }

    fn record_certificate(
        &self,
        id: &DeviceId,
        cert: &IssuedCertificate,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        identity::record_certificate(&mut *self.conn()?, id, cert, hardware, now_ms)
    }

    fn certificate_standing(
        &self,
        id: &DeviceId,
        serial: &str,
    ) -> Result<CertStanding, StoreError> {
        identity::standing(&mut *self.conn()?, id, serial)
    }

    fn enrol_again_if_lapsed(
        &self,
        id: &DeviceId,
        lapsed_before_ms: u64,
        auto_approve: bool,
    ) -> Result<bool, StoreError> {
        identity::enrol_again_if_lapsed(&mut *self.conn()?, id, lapsed_before_ms, auto_approve)
    }

    fn decommission(
        &self,
        id: &DeviceId,
        actor: &str,
        purge: bool,
        event: &JsonEvent,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        identity::decommission(&mut *self.conn()?, id, actor, purge, event, now_ms)
    }

    fn frame_contexts_by_key(
        &self,
        key_id: [u8; 4],
    ) -> Result<Vec<StoredFrameContext>, StoreError> {
        frames::by_key(&*self.conn()?, key_id)
    }

    fn frame_contexts(&self, id: &DeviceId) -> Result<Vec<StoredFrameContext>, StoreError> {
        frames::by_device(&*self.conn()?, id)
    }

    fn create_frame_context(
        &self,
        id: &DeviceId,
        keys: &FrameKeys,
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError> {
        frames::create(&mut *self.conn()?, id, keys, now_ms)
    }

    fn rotate_frame_context(
        &self,
        id: &DeviceId,
        from_epoch: u32,
        master_secret: &[u8; 32],
        master_salt: &[u8],
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError> {
        frames::rotate(
            &mut *self.conn()?,
            id,
            from_epoch,
            master_secret,
            master_salt,
            now_ms,
        )
    }

    fn ingest_frame(&self, frame: &FrameWrite, now_ms: u64) -> Result<FrameIngested, StoreError> {
        frames::ingest(&mut *self.conn()?, frame, now_ms)
    }

    fn reserve_frame_counters(
        &self,
        key_id: [u8; 4],
        epoch: u32,
        expected: Option<u32>,
        next_free: u32,
    ) -> Result<(), StoreError> {
        frames::reserve(&*self.conn()?, key_id, epoch, expected, next_free)
    }

    fn frame_link_status(&self, id: &DeviceId) -> Result<FrameLinkStatus, StoreError> {
        frames::link_status(&*self.conn()?, id)
    }

    fn bind_link(
        &self,
        address: &LinkAddress,
        id: &DeviceId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        links::bind(&mut *self.conn()?, address, id, now_ms)
    }

    fn unbind_link(&self, address: &LinkAddress) -> Result<Option<DeviceId>, StoreError> {
        links::unbind(&*self.conn()?, address)
    }

    fn linked_device(&self, address: &LinkAddress) -> Result<Option<DeviceId>, StoreError> {
        links::device_of(&*self.conn()?, address)
    }

    fn device_links(&self, id: &DeviceId) -> Result<Vec<LinkBinding>, StoreError> {
        links::of_device(&*self.conn()?, id)
    }

    fn sbd_status(&self, id: &DeviceId) -> Result<Option<SbdStatus>, StoreError> {
        links::sbd_status(&*self.conn()?, id)
    }

    fn add_sbd_credits(&self, id: &DeviceId, day: &str, credits: u32) -> Result<(), StoreError> {
        links::add_credits(&*self.conn()?, id, day, credits)
    }

    fn lorawan_status(&self, id: &DeviceId) -> Result<Option<LorawanStatus>, StoreError> {
        lorawan::status(&*self.conn()?, id)
    }

    fn add_lorawan_downlink(&self, id: &DeviceId, day: &str) -> Result<(), StoreError> {
        lorawan::add_downlink(&*self.conn()?, id, day)
    }

    fn changes_since(&self, cursor: Option<&ChangeCursor>) -> Result<StoreChanges, StoreError> {
        changes::since(&mut *self.conn()?, cursor)
    }

    fn wake_on_contact(&self, devices: &[SeenAt]) -> Result<Vec<DeviceId>, StoreError> {
        changes::wake_on_contact(&mut *self.conn()?, devices)
    }

    fn heartbeat_history(
        &self,
        id: &DeviceId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<super::HeartbeatHistory, StoreError> {
        history::read(&*self.conn()?, id, from_ms, to_ms, limit)
    }

    fn retention_page(
        &self,
        after: Option<&DeviceId>,
        page: usize,
        cutoff_ms: u64,
    ) -> Result<super::RetentionPage, StoreError> {
        retention::page(&*self.conn()?, after, page, cutoff_ms)
    }

    fn delete_expired_records(
        &self,
        id: &DeviceId,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<super::ExpiredChunk, StoreError> {
        retention::delete_records(&*self.conn()?, id, cutoff_ms, limit)
    }

    fn add_link_usage(
        &self,
        id: &DeviceId,
        link: &str,
        usage: &LinkUsage,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let day = crate::store::utc_day(now_ms);
        link_days::add(&*self.conn()?, id, link, &day, usage)
    }

    fn link_days(&self, id: &DeviceId, since_day: &str) -> Result<Vec<LinkDay>, StoreError> {
        link_days::since(&*self.conn()?, id, since_day)
    }

    fn delete_expired_link_days(
        &self,
        before_day: &str,
        limit: usize,
    ) -> Result<usize, StoreError> {
        link_days::delete_before(&*self.conn()?, before_day, limit)
    }

    fn delete_expired_json_events(
        &self,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        retention::delete_json_events(&*self.conn()?, cutoff_ms, limit)
    }

    fn append_audit(&self, entry: &crate::store::AuditEntry) -> Result<(), StoreError> {
        audit::append(&*self.conn()?, entry)
    }

    fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<crate::store::AuditRecord>, StoreError> {
        audit::newest(&*self.conn()?, before, limit)
    }
}

#[cfg(test)]
impl SqliteStore {
    /// Run raw SQL on the connection (tests: triggers that make a
    /// transaction fail half-way, as a crash would).
    pub(crate) fn execute_batch_for_tests(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn()?.execute_batch(sql)?)
    }
}
