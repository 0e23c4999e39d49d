//! The PostgreSQL store (`store = "postgres"`): several server replicas
//! share one database. Blocking, like [`crate::store::SqliteStore`]: the
//! trait is called from tokio's blocking pool.
//!
//! - Connections come from a bounded `r2d2` pool of rust-postgres clients
//!   ([`PostgresSettings`]); a connection is checked before it is handed
//!   out, so the pool drops those a PostgreSQL restart closed.
//! - Connections are made **without TLS** (`NoTls`) for now: use a Unix
//!   socket, loopback, or a network you trust.
//! - Every call is one transaction, retried whole on a serialization
//!   failure or deadlock (`tx.rs`): SERIALIZABLE where it reads and writes
//!   without row locks, READ COMMITTED where its writes are one statement or
//!   on a row it locks first (batches, enrolment, certificates), READ ONLY
//!   for single-statement reads; writes are committed (and, with
//!   PostgreSQL's default `synchronous_commit`, flushed) before the call
//!   returns.
//! - Migrations run at [`PostgresStore::connect`] under an advisory lock
//!   (`schema.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::NoTls;
use postgres::types::Type;
use r2d2_postgres::PostgresConnectionManager;
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
pub(super) mod test_db;
mod tx;

use records::{
    apply_status, insert_records, lock_device, max_seq, require_device, touch_for_batch,
};
use rows::{DEVICE_COLUMNS, class_from, device_from, object_from, to_i64, to_u64};
use tx::{Isolation, Pool, read, run, run_at};

/// Connection settings of the PostgreSQL store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Connections in the pool at most (`postgres_max_connections`).
    pub max_connections: u32,
    /// Deadline of connecting, and of waiting for a pooled connection
    /// (`postgres_connect_timeout_seconds`).
    pub connect_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// PostgreSQL-backed [`Store`].
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user@host/db` or `host=… dbname=…`),
    /// and apply pending migrations. Fails when the database's schema is
    /// newer than this server.
    pub fn connect(url: &str, settings: PostgresSettings) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse()?;
        config.connect_timeout(settings.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("flotta-server");
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(settings.connect_timeout)
            .test_on_check_out(true)
            .build(manager)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut conn = pool.get()?;
        schema::migrate(&mut conn, now)?;
        drop(conn);
        Ok(Self {
            pool: Pool::new(pool),
        })
    }

    /// Transactions this store ran again after a conflict (a serialization
    /// failure, deadlock or racing insert), since it connected.
    pub fn conflicts_retried(&self) -> u64 {
        self.pool.retried()
    }

    /// The schema version of the database (migrations applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        read(&self.pool, |tx| {
            Ok(tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )?
                .try_get(0)?)
        })
    }
}

impl Store for PostgresStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.pool.get()?.simple_query("SELECT 1")?;
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
        run_at(&self.pool, Isolation::Locked, |tx| {
            identity::enrol(tx, id, namespace, hardware, auto_approve, now_ms)
        })
    }

    // Single-statement writes run READ COMMITTED (`Isolation::Locked`): one
    // statement is atomic, and an `UPDATE` by primary key under
    // SERIALIZABLE conflicts with writes of other devices on the same index
    // page (see `tx.rs`).
    fn approve(&self, id: &DeviceId) -> Result<(), StoreError> {
        let n = run_at(&self.pool, Isolation::Locked, |tx| {
            Ok(tx.execute(
                "UPDATE devices SET approved = true WHERE id = $1",
                &[&id.as_str()],
            )?)
        })?;
        if n == 0 {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        Ok(())
    }

    fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        read(&self.pool, |tx| {
            // Typed parameters: one round trip, no separate prepare (on
            // every batch, with `configuration`).
            let row = tx.query_typed_opt(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"),
                &[(&id.as_str(), Type::TEXT)],
            )?;
            row.as_ref().map(device_from).transpose()
        })
    }

    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        read(&self.pool, |tx| {
            let rows = tx.query(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"),
                &[],
            )?;
            rows.iter().map(device_from).collect()
        })
    }

    fn mark_registered(
        &self,
        id: &DeviceId,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now = to_i64("time", now_ms)?;
        let hardware = hardware.map(Value::to_string);
        let n = run_at(&self.pool, Isolation::Locked, |tx| {
            Ok(tx.execute(
                "UPDATE devices SET registered = true, registered_at_ms = $2,
                     hardware = COALESCE($3::text, hardware)
                 WHERE id = $1",
                &[&id.as_str(), &now, &hardware],
            )?)
        })?;
        if n == 0 {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        Ok(())
    }

    fn mark_cert_used(&self, id: &DeviceId) -> Result<(), StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            tx.execute(
                "UPDATE devices SET cert_used = true WHERE id = $1 AND NOT cert_used",
                &[&id.as_str()],
            )?;
            Ok(())
        })
    }

    fn update_status(
        &self,
        id: &DeviceId,
        update: &StatusUpdate,
        events: &[JsonEvent],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let now = to_i64("time", now_ms)?;
        // As a batch: READ COMMITTED under the device's row lock.
        run_at(&self.pool, Isolation::Locked, |tx| {
            lock_device(tx, id)?;
            events::insert(tx, id, events, now)?;
            apply_status(tx, id, update, now)?;
            tx.execute(
                "UPDATE devices SET last_link = 'tls' WHERE id = $1",
                &[&id.as_str()],
            )?;
            Ok(())
        })
    }

    fn events(&self, id: &DeviceId, limit: usize) -> Result<Vec<DeviceEvent>, StoreError> {
        read(&self.pool, |tx| events::newest(tx, id, limit))
    }

    fn logs(
        &self,
        id: &DeviceId,
        since_ms: u64,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<DeviceEvent>, StoreError> {
        read(&self.pool, |tx| {
            logs::newest(tx, id, since_ms, limit, offset)
        })
    }

    fn feed(&self, q: &super::FeedQuery) -> Result<Vec<super::FeedRow>, StoreError> {
        read(&self.pool, |tx| feed::read(tx, q))
    }

    fn ingest_batch(
        &self,
        id: &DeviceId,
        records: &[NewRecord],
        status: Option<&StatusUpdate>,
        contact: Contact,
    ) -> Result<Option<u64>, StoreError> {
        let now = to_i64("time", contact.at_ms)?;
        let interval = contact.upload_interval_seconds.map(i64::from);
        // The answer is read in the transaction and returned only once it
        // committed: `acked_through` is never ahead of what is durable.
        // READ COMMITTED under the device's row lock (`touch_for_batch`): the
        // records are deduplicated by their primary key, the status applies
        // only when newer (re-checked by the `UPDATE` on the newest row), and
        // `max_seq` reads after the lock, so it sees every batch of this
        // device committed before; no predicate lock, so batches of other
        // devices (and controller passes) never make this one fail.
        run_at(&self.pool, Isolation::Locked, |tx| {
            touch_for_batch(tx, id, status, now, interval)?;
            insert_records(tx, id, records, now)?;
            let day = crate::store::utc_day(contact.at_ms);
            link_days::add(tx, id, crate::store::TLS_LINK, &day, &contact.usage)?;
            max_seq(tx, id)
        })
    }

    fn acked_through(&self, id: &DeviceId) -> Result<Option<u64>, StoreError> {
        read(&self.pool, |tx| max_seq(tx, id))
    }

    fn records(
        &self,
        id: &DeviceId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let after = after.map_or(Ok(-1), |a| to_i64("seq", a))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        read(&self.pool, |tx| {
            let rows = tx.query(
                "SELECT seq, at_ms, class, payload, received_ms FROM records
                 WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&id.as_str(), &after, &limit],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(StoredRecord {
                        record: NewRecord {
                            seq: to_u64(r.try_get(0)?),
                            at_ms: to_u64(r.try_get(1)?),
                            class: class_from(r.try_get(2)?),
                            payload: r.try_get(3)?,
                        },
                        received_ms: to_u64(r.try_get(4)?),
                    })
                })
                .collect()
        })
    }

    fn configuration(&self, id: &DeviceId) -> Result<Option<DeviceConfig>, StoreError> {
        read(&self.pool, |tx| {
            let row = tx.query_typed_opt(
                "SELECT version, spec FROM device_config WHERE device_id = $1",
                &[(&id.as_str(), Type::TEXT)],
            )?;
            row.map(|r| {
                let version: i64 = r.try_get(0)?;
                let spec: String = r.try_get(1)?;
                Ok(DeviceConfig {
                    version: version.to_string(),
                    spec: serde_json::from_str(&spec)?,
                })
            })
            .transpose()
        })
    }

    fn set_configuration(&self, id: &DeviceId, spec: &Value) -> Result<String, StoreError> {
        let spec = spec.to_string();
        run(&self.pool, |tx| {
            require_device(tx, id)?;
            let current = tx.query_opt(
                "SELECT version, spec FROM device_config WHERE device_id = $1 FOR UPDATE",
                &[&id.as_str()],
            )?;
            let current = current
                .map(|r| Ok::<_, StoreError>((r.try_get::<_, i64>(0)?, r.try_get::<_, String>(1)?)))
                .transpose()?;
            let version = match current {
                Some((v, old)) if old == spec => v,
                Some((v, _)) => v + 1,
                None => 1,
            };
            tx.execute(
                "INSERT INTO device_config (device_id, version, spec) VALUES ($1, $2, $3)
                 ON CONFLICT (device_id) DO UPDATE SET version = $2, spec = $3",
                &[&id.as_str(), &version, &spec],
            )?;
            Ok(version.to_string())
        })
    }

    fn set_labels(
        &self,
        id: &DeviceId,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let labels = serde_json::to_string(labels)?;
        let n = run_at(&self.pool, Isolation::Locked, |tx| {
            Ok(tx.execute(
                "UPDATE devices SET labels = $2 WHERE id = $1",
                &[&id.as_str(), &labels],
            )?)
        })?;
        if n == 0 {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        Ok(())
    }

    fn put_object(&self, o: &StoredObject) -> Result<(), StoreError> {
        let body = o.body.to_string();
        run_at(&self.pool, Isolation::Locked, |tx| {
            tx.execute(
                "INSERT INTO objects (kind, namespace, name, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (kind, namespace, name) DO UPDATE SET body = $4",
                &[&o.kind, &o.namespace, &o.name, &body],
            )?;
            Ok(())
        })
    }

    fn get_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        read(&self.pool, |tx| {
            let row = tx.query_opt(
                "SELECT kind, namespace, name, body FROM objects
                 WHERE kind = $1 AND namespace = $2 AND name = $3",
                &[&kind, &namespace, &name],
            )?;
            row.as_ref().map(object_from).transpose()
        })
    }

    fn list_objects(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<StoredObject>, StoreError> {
        read(&self.pool, |tx| {
            let rows = tx.query(
                "SELECT kind, namespace, name, body FROM objects
                 WHERE kind = $1 AND ($2::text IS NULL OR namespace = $2::text)
                 ORDER BY namespace, name",
                &[&kind, &namespace],
            )?;
            rows.iter().map(object_from).collect()
        })
    }

    fn delete_object(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            Ok(tx.execute(
                "DELETE FROM objects WHERE kind = $1 AND namespace = $2 AND name = $3",
                &[&kind, &namespace, &name],
            )? > 0)
        })
    }

    fn record_certificate(
        &self,
        id: &DeviceId,
        cert: &IssuedCertificate,
        hardware: Option<&Value>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            identity::record_certificate(tx, id, cert, hardware, now_ms)
        })
    }

    fn certificate_standing(
        &self,
        id: &DeviceId,
        serial: &str,
    ) -> Result<CertStanding, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            identity::standing(tx, id, serial)
        })
    }

    fn enrol_again_if_lapsed(
        &self,
        id: &DeviceId,
        lapsed_before_ms: u64,
        auto_approve: bool,
    ) -> Result<bool, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            identity::enrol_again_if_lapsed(tx, id, lapsed_before_ms, auto_approve)
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
        run(&self.pool, |tx| {
            identity::decommission(tx, id, actor, purge, event, now_ms)
        })
    }

    fn frame_contexts_by_key(
        &self,
        key_id: [u8; 4],
    ) -> Result<Vec<StoredFrameContext>, StoreError> {
        run(&self.pool, |tx| frames::by_key(tx, key_id))
    }

    fn frame_contexts(&self, id: &DeviceId) -> Result<Vec<StoredFrameContext>, StoreError> {
        run(&self.pool, |tx| frames::by_device(tx, id))
    }

    fn create_frame_context(
        &self,
        id: &DeviceId,
        keys: &FrameKeys,
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError> {
        run(&self.pool, |tx| frames::create(tx, id, keys, now_ms))
    }

    fn rotate_frame_context(
        &self,
        id: &DeviceId,
        from_epoch: u32,
        master_secret: &[u8; 32],
        master_salt: &[u8],
        now_ms: u64,
    ) -> Result<StoredFrameContext, StoreError> {
        run(&self.pool, |tx| {
            frames::rotate(tx, id, from_epoch, master_secret, master_salt, now_ms)
        })
    }

    fn ingest_frame(&self, frame: &FrameWrite, now_ms: u64) -> Result<FrameIngested, StoreError> {
        run(&self.pool, |tx| frames::ingest(tx, frame, now_ms))
    }

    fn reserve_frame_counters(
        &self,
        key_id: [u8; 4],
        epoch: u32,
        expected: Option<u32>,
        next_free: u32,
    ) -> Result<(), StoreError> {
        run(&self.pool, |tx| {
            frames::reserve(tx, key_id, epoch, expected, next_free)
        })
    }

    fn frame_link_status(&self, id: &DeviceId) -> Result<FrameLinkStatus, StoreError> {
        run(&self.pool, |tx| frames::link_status(tx, id))
    }

    fn bind_link(
        &self,
        address: &LinkAddress,
        id: &DeviceId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        run(&self.pool, |tx| links::bind(tx, address, id, now_ms))
    }

    fn unbind_link(&self, address: &LinkAddress) -> Result<Option<DeviceId>, StoreError> {
        run(&self.pool, |tx| links::unbind(tx, address))
    }

    fn linked_device(&self, address: &LinkAddress) -> Result<Option<DeviceId>, StoreError> {
        run(&self.pool, |tx| links::device_of(tx, address))
    }

    fn device_links(&self, id: &DeviceId) -> Result<Vec<LinkBinding>, StoreError> {
        run(&self.pool, |tx| links::of_device(tx, id))
    }

    fn sbd_status(&self, id: &DeviceId) -> Result<Option<SbdStatus>, StoreError> {
        run(&self.pool, |tx| links::sbd_status(tx, id))
    }

    fn add_sbd_credits(&self, id: &DeviceId, day: &str, credits: u32) -> Result<(), StoreError> {
        run(&self.pool, |tx| links::add_credits(tx, id, day, credits))
    }

    fn lorawan_status(&self, id: &DeviceId) -> Result<Option<LorawanStatus>, StoreError> {
        run(&self.pool, |tx| lorawan::status(tx, id))
    }

    fn add_lorawan_downlink(&self, id: &DeviceId, day: &str) -> Result<(), StoreError> {
        run(&self.pool, |tx| lorawan::add_downlink(tx, id, day))
    }

    fn changes_since(&self, cursor: Option<&ChangeCursor>) -> Result<StoreChanges, StoreError> {
        run_at(&self.pool, Isolation::Snapshot, |tx| {
            changes::since(tx, cursor)
        })
    }

    fn wake_on_contact(&self, devices: &[SeenAt]) -> Result<Vec<DeviceId>, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            changes::wake_on_contact(tx, devices)
        })
    }

    fn heartbeat_history(
        &self,
        id: &DeviceId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<super::HeartbeatHistory, StoreError> {
        read(&self.pool, |tx| {
            history::read(tx, id, from_ms, to_ms, limit)
        })
    }

    fn retention_page(
        &self,
        after: Option<&DeviceId>,
        page: usize,
        cutoff_ms: u64,
    ) -> Result<super::RetentionPage, StoreError> {
        read(&self.pool, |tx| retention::page(tx, after, page, cutoff_ms))
    }

    // One DELETE each: atomic on its own at READ COMMITTED (`retention.rs`).
    fn delete_expired_records(
        &self,
        id: &DeviceId,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<super::ExpiredChunk, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            retention::delete_records(tx, id, cutoff_ms, limit)
        })
    }

    fn add_link_usage(
        &self,
        id: &DeviceId,
        link: &str,
        usage: &LinkUsage,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let day = crate::store::utc_day(now_ms);
        run_at(&self.pool, Isolation::Locked, |tx| {
            link_days::add(tx, id, link, &day, usage)
        })
    }

    fn link_days(&self, id: &DeviceId, since_day: &str) -> Result<Vec<LinkDay>, StoreError> {
        read(&self.pool, |tx| link_days::since(tx, id, since_day))
    }

    fn delete_expired_link_days(
        &self,
        before_day: &str,
        limit: usize,
    ) -> Result<usize, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            link_days::delete_before(tx, before_day, limit)
        })
    }

    fn delete_expired_json_events(
        &self,
        cutoff_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        run_at(&self.pool, Isolation::Locked, |tx| {
            retention::delete_json_events(tx, cutoff_ms, limit)
        })
    }

    fn append_audit(&self, entry: &crate::store::AuditEntry) -> Result<(), StoreError> {
        // One INSERT: atomic on its own at READ COMMITTED.
        run_at(&self.pool, Isolation::Locked, |tx| audit::append(tx, entry))
    }

    fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<crate::store::AuditRecord>, StoreError> {
        read(&self.pool, |tx| audit::newest(tx, before, limit))
    }
}
