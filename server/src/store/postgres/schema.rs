//! The PostgreSQL schema and its migrations.
//!
//! Migrations are numbered from 1 and recorded in `schema_migrations`
//! (`version`, `applied_ms`, `description`); a migration is only ever added,
//! never edited. [`migrate`] runs at start in one transaction that first
//! takes a transaction-scoped advisory lock, so replicas starting at once
//! apply each migration exactly once (the others wait, then find nothing to
//! do). A database whose newest migration is above what this binary knows is
//! refused.
//!
//! Version 1 is the whole schema of SQLite's migrations 1-6 (the same
//! tables and columns, `BIGINT` for SQLite's `INTEGER`, `BOOLEAN` for its
//! flags, `BYTEA` for `BLOB`, `DOUBLE PRECISION` for `REAL`). JSON is kept
//! as `TEXT`, byte for byte what the server serialised (as in SQLite). Text
//! keys use the `"C"` collation so that `ORDER BY` sorts as SQLite's binary
//! collation does, whatever the database's default.

use postgres::Client;

use crate::store::StoreError;

/// The advisory lock key of migrations (`pg_advisory_xact_lock`): "flotta"
/// in ASCII.
const MIGRATION_LOCK: i64 = 0x666c_6f74_7461;

/// `(description, SQL)` of each migration, version = index + 1.
pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "devices, records, configuration, objects, events, identity, frames, links",
        r#"
CREATE TABLE devices (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    namespace              TEXT COLLATE "C" NOT NULL,
    approved               BOOLEAN NOT NULL,
    registered             BOOLEAN NOT NULL DEFAULT false,
    cert_used              BOOLEAN NOT NULL DEFAULT false,
    labels                 TEXT NOT NULL DEFAULT '{}',
    hardware               TEXT,
    status                 TEXT,
    last_heartbeat         TEXT,
    last_heartbeat_seq     BIGINT,
    last_seen_ms           BIGINT,
    enrolled_at_ms         BIGINT NOT NULL,
    registered_at_ms       BIGINT,
    cert_serial            TEXT,
    cert_not_after_ms      BIGINT,
    next_cert_serial       TEXT,
    next_cert_not_after_ms BIGINT,
    decommissioned_at_ms   BIGINT,
    decommissioned_by      TEXT,
    last_link              TEXT,
    frames_stored          BIGINT NOT NULL DEFAULT 0,
    frames_duplicate       BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE records (
    device_id   TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    class       BIGINT NOT NULL,
    payload     BYTEA NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE TABLE device_config (
    device_id TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    version   BIGINT NOT NULL,
    spec      TEXT NOT NULL
);
CREATE TABLE objects (
    kind      TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE json_events (
    device_id   TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at_ms       BIGINT NOT NULL,
    idx         BIGINT NOT NULL,
    payload     BYTEA NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (device_id, at_ms, idx, payload)
);
CREATE TABLE frame_keys (
    key_id    BYTEA PRIMARY KEY CHECK (length(key_id) = 4),
    device_id TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES devices(id) ON DELETE CASCADE
);
CREATE TABLE frame_contexts (
    key_id        BYTEA NOT NULL REFERENCES frame_keys(key_id) ON DELETE CASCADE,
    epoch         BIGINT NOT NULL,
    master_secret BYTEA NOT NULL CHECK (length(master_secret) = 32),
    master_salt   BYTEA NOT NULL,
    created_ms    BIGINT NOT NULL,
    up_highest    BIGINT,
    up_bitmap     BIGINT,
    down_next     BIGINT,
    PRIMARY KEY (key_id, epoch)
);
CREATE TABLE frame_fragments (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    start     BIGINT NOT NULL,
    data      BYTEA NOT NULL,
    total_len BIGINT NOT NULL,
    at_ms     BIGINT NOT NULL,
    class     BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq, start)
);
CREATE TABLE link_bindings (
    kind      TEXT COLLATE "C" NOT NULL,
    address   TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    bound_ms  BIGINT NOT NULL,
    PRIMARY KEY (kind, address)
);
CREATE INDEX link_bindings_device ON link_bindings(device_id);
CREATE TABLE sbd_status (
    device_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    imei         TEXT NOT NULL,
    last_momsn   BIGINT,
    latitude     DOUBLE PRECISION,
    longitude    DOUBLE PRECISION,
    cep_km       DOUBLE PRECISION,
    last_mo_ms   BIGINT,
    credits_day  TEXT,
    credits_used BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE lorawan_status (
    device_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    dev_eui        TEXT NOT NULL,
    last_f_cnt     BIGINT,
    last_dr        BIGINT,
    rssi           DOUBLE PRECISION,
    snr            DOUBLE PRECISION,
    last_uplink_ms BIGINT,
    airtime_day    TEXT,
    airtime_us     BIGINT NOT NULL DEFAULT 0,
    downlinks      BIGINT NOT NULL DEFAULT 0
);
"#,
    ),
    (
        "change feed of the incremental controller pass",
        // As SQLite's migration 7 (`changes.rs`), with the writing
        // transaction's id instead of a counter: a cursor is a snapshot, so
        // a change committed late by a transaction that began early is not
        // lost below a cursor already advanced (a sequence would be).
        r#"
ALTER TABLE devices ADD COLUMN change_xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE devices ADD COLUMN wake_on_contact BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX devices_change_xid ON devices(change_xid);
CREATE TABLE object_changes (
    kind       TEXT COLLATE "C" NOT NULL,
    namespace  TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    change_xid xid8 NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE INDEX object_changes_xid ON object_changes(change_xid);
CREATE FUNCTION flotta_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed boolean := TG_OP = 'INSERT';
BEGIN
    IF NOT changed THEN
        changed := ROW(NEW.namespace, NEW.approved, NEW.registered, NEW.cert_used, NEW.labels,
                       NEW.hardware, NEW.status, NEW.enrolled_at_ms, NEW.decommissioned_at_ms,
                       NEW.decommissioned_by)
                   IS DISTINCT FROM
                   ROW(OLD.namespace, OLD.approved, OLD.registered, OLD.cert_used, OLD.labels,
                       OLD.hardware, OLD.status, OLD.enrolled_at_ms, OLD.decommissioned_at_ms,
                       OLD.decommissioned_by)
            OR (NEW.last_seen_ms IS DISTINCT FROM OLD.last_seen_ms
                AND (OLD.last_seen_ms IS NULL OR OLD.wake_on_contact));
    END IF;
    -- JSON is parsed only when the heartbeat's text changed.
    IF NOT changed AND NEW.last_heartbeat IS DISTINCT FROM OLD.last_heartbeat THEN
        changed := COALESCE(jsonb_typeof(NEW.last_heartbeat::jsonb) = 'object', false)
                   IS DISTINCT FROM COALESCE(jsonb_typeof(OLD.last_heartbeat::jsonb) = 'object', false)
            OR (NEW.last_heartbeat::jsonb -> 'workloads')
               IS DISTINCT FROM (OLD.last_heartbeat::jsonb -> 'workloads');
    END IF;
    IF changed THEN
        NEW.change_xid := pg_current_xact_id();
        NEW.wake_on_contact := false;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER devices_changed BEFORE INSERT OR UPDATE ON devices
    FOR EACH ROW EXECUTE FUNCTION flotta_device_changed();
CREATE FUNCTION flotta_object_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO object_changes (kind, namespace, name, change_xid)
            VALUES (OLD.kind, OLD.namespace, OLD.name, pg_current_xact_id())
            ON CONFLICT (kind, namespace, name) DO UPDATE SET change_xid = excluded.change_xid;
    ELSIF TG_OP = 'INSERT'
       OR (NEW.body::jsonb - 'status') IS DISTINCT FROM (OLD.body::jsonb - 'status') THEN
        INSERT INTO object_changes (kind, namespace, name, change_xid)
            VALUES (NEW.kind, NEW.namespace, NEW.name, pg_current_xact_id())
            ON CONFLICT (kind, namespace, name) DO UPDATE SET change_xid = excluded.change_xid;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER objects_changed AFTER INSERT OR UPDATE OR DELETE ON objects
    FOR EACH ROW EXECUTE FUNCTION flotta_object_changed();
"#,
    ),
    (
        "upload interval reported by the device",
        // As SQLite's migration 8: the interval of the device's last batch
        // (format 3), which presence counts; its change marks the device
        // (the function is migration 2's with the column added to the row).
        r#"
ALTER TABLE devices ADD COLUMN contact_interval_seconds BIGINT;
CREATE OR REPLACE FUNCTION flotta_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed boolean := TG_OP = 'INSERT';
BEGIN
    IF NOT changed THEN
        changed := ROW(NEW.namespace, NEW.approved, NEW.registered, NEW.cert_used, NEW.labels,
                       NEW.hardware, NEW.status, NEW.enrolled_at_ms, NEW.decommissioned_at_ms,
                       NEW.decommissioned_by, NEW.contact_interval_seconds)
                   IS DISTINCT FROM
                   ROW(OLD.namespace, OLD.approved, OLD.registered, OLD.cert_used, OLD.labels,
                       OLD.hardware, OLD.status, OLD.enrolled_at_ms, OLD.decommissioned_at_ms,
                       OLD.decommissioned_by, OLD.contact_interval_seconds)
            OR (NEW.last_seen_ms IS DISTINCT FROM OLD.last_seen_ms
                AND (OLD.last_seen_ms IS NULL OR OLD.wake_on_contact));
    END IF;
    -- JSON is parsed only when the heartbeat's text changed.
    IF NOT changed AND NEW.last_heartbeat IS DISTINCT FROM OLD.last_heartbeat THEN
        changed := COALESCE(jsonb_typeof(NEW.last_heartbeat::jsonb) = 'object', false)
                   IS DISTINCT FROM COALESCE(jsonb_typeof(OLD.last_heartbeat::jsonb) = 'object', false)
            OR (NEW.last_heartbeat::jsonb -> 'workloads')
               IS DISTINCT FROM (OLD.last_heartbeat::jsonb -> 'workloads');
    END IF;
    IF changed THEN
        NEW.change_xid := pg_current_xact_id();
        NEW.wake_on_contact := false;
    END IF;
    RETURN NEW;
END $$;
"#,
    ),
    (
        "indexes of the event and log feeds",
        // As SQLite's migration 9 (`store/feed.rs`).
        r#"
CREATE INDEX records_event_arrival ON records(received_ms, device_id, seq) WHERE class = 2;
CREATE INDEX records_event_time ON records(at_ms, device_id, seq) WHERE class = 2;
CREATE INDEX records_device_event_arrival ON records(device_id, received_ms, seq) WHERE class = 2;
CREATE INDEX records_device_event_time ON records(device_id, at_ms, seq) WHERE class = 2;
CREATE INDEX records_device_log_arrival ON records(device_id, received_ms, seq) WHERE class = 1;
CREATE INDEX records_device_log_time ON records(device_id, at_ms, seq) WHERE class = 1;
CREATE INDEX json_events_arrival ON json_events(received_ms, device_id, at_ms, idx);
CREATE INDEX json_events_time ON json_events(at_ms, device_id, idx);
"#,
    ),
    (
        "audit records of the admin listener",
        r#"
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    principal TEXT NOT NULL,
    role      TEXT NOT NULL,
    via       TEXT NOT NULL,
    method    TEXT NOT NULL,
    path      TEXT NOT NULL,
    status    INTEGER NOT NULL,
    detail    TEXT NOT NULL
);
"#,
    ),
    (
        "index of the heartbeat history",
        // As SQLite's migration 11 (`store/history.rs`).
        r#"
CREATE INDEX records_device_heartbeat_time ON records(device_id, at_ms, seq) WHERE class = 0;
"#,
    ),
    (
        "link statistics per device and day",
        // As SQLite's migration 12 (`store/link_days.rs`).
        r#"
CREATE TABLE link_days (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    day         TEXT NOT NULL,
    link        TEXT NOT NULL,
    windows     BIGINT NOT NULL DEFAULT 0,
    tls_full    BIGINT NOT NULL DEFAULT 0,
    tls_resumed BIGINT NOT NULL DEFAULT 0,
    frames      BIGINT NOT NULL DEFAULT 0,
    bytes_up    BIGINT NOT NULL DEFAULT 0,
    bytes_down  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, day, link)
);
CREATE INDEX link_days_day ON link_days(day);
"#,
    ),
];

/// Apply pending migrations under the advisory lock, in one transaction.
/// Returns the schema version after the call.
pub(super) fn migrate(client: &mut Client, now_ms: i64) -> Result<i64, StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     BIGINT PRIMARY KEY,
             applied_ms  BIGINT NOT NULL,
             description TEXT NOT NULL
         )",
    )?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .try_get(0)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if applied > known {
        return Err(StoreError::OutOfRange(format!(
            "PostgreSQL schema version {applied} is newer than this server ({known}): \
             run a server at least as new as the one that migrated the database"
        )));
    }
    let mut version = applied;
    for (description, sql) in MIGRATIONS
        .iter()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        version += 1;
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms, description) VALUES ($1, $2, $3)",
            &[&version, &now_ms, description],
        )?;
    }
    tx.commit()?;
    Ok(version)
}
