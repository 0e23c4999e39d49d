//! The SQLite schema, its migrations and connection settings.

use rusqlite::Connection;

use crate::store::StoreError;

/// Schema migrations; `PRAGMA user_version` counts how many were applied.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    namespace          TEXT NOT NULL,
    approved           INTEGER NOT NULL,
    registered         INTEGER NOT NULL DEFAULT 0,
    cert_used          INTEGER NOT NULL DEFAULT 0,
    labels             TEXT NOT NULL DEFAULT '{}',
    hardware           TEXT,
    status             TEXT,
    last_heartbeat     TEXT,
    last_heartbeat_seq INTEGER,
    last_seen_ms       INTEGER,
    enrolled_at_ms     INTEGER NOT NULL,
    registered_at_ms   INTEGER
) STRICT;
CREATE TABLE records (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    class       INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE device_config (
    device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    spec      TEXT NOT NULL
) STRICT;
CREATE TABLE objects (
    kind      TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
) STRICT, WITHOUT ROWID;
"#,
    // Events of Flotta JSON heartbeats: no sequence number, so they are
    // identified by (device, sent time, position, payload); a retried
    // heartbeat inserts nothing (`INSERT OR IGNORE`).
    r#"
CREATE TABLE json_events (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at_ms       INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, at_ms, idx, payload)
) STRICT, WITHOUT ROWID;
"#,
    // Device identity lifecycle: the serial of the device's current
    // certificate and of a renewed one not used yet (both accepted; the
    // first use of the renewed one supersedes the current one), and
    // decommissioning. Devices registered before this migration have no
    // serial: their certificates stay accepted until their first renewal.
    r#"
ALTER TABLE devices ADD COLUMN cert_serial TEXT;
ALTER TABLE devices ADD COLUMN cert_not_after_ms INTEGER;
ALTER TABLE devices ADD COLUMN next_cert_serial TEXT;
ALTER TABLE devices ADD COLUMN next_cert_not_after_ms INTEGER;
ALTER TABLE devices ADD COLUMN decommissioned_at_ms INTEGER;
ALTER TABLE devices ADD COLUMN decommissioned_by TEXT;
"#,
    // Sealed frames (issue 10, `frames.rs`): one key id per device, unique
    // server-wide; per epoch (the current one and at most one previous) the
    // key material, the uplink replay window and the downlink counter
    // reservation; fragments of records waiting for their other bytes; and
    // per device the link it last used and frame counts.
    r#"
CREATE TABLE frame_keys (
    key_id    BLOB PRIMARY KEY CHECK (length(key_id) = 4),
    device_id TEXT NOT NULL UNIQUE REFERENCES devices(id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE TABLE frame_contexts (
    key_id        BLOB NOT NULL REFERENCES frame_keys(key_id) ON DELETE CASCADE,
    epoch         INTEGER NOT NULL,
    master_secret BLOB NOT NULL CHECK (length(master_secret) = 32),
    master_salt   BLOB NOT NULL,
    created_ms    INTEGER NOT NULL,
    up_highest    INTEGER,
    up_bitmap     INTEGER,
    down_next     INTEGER,
    PRIMARY KEY (key_id, epoch)
) STRICT, WITHOUT ROWID;
CREATE TABLE frame_fragments (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    start     INTEGER NOT NULL,
    data      BLOB NOT NULL,
    total_len INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    class     INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq, start)
) STRICT, WITHOUT ROWID;
ALTER TABLE devices ADD COLUMN last_link TEXT;
ALTER TABLE devices ADD COLUMN frames_stored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN frames_duplicate INTEGER NOT NULL DEFAULT 0;
"#,
    // Links that identify a device by a network address (`links`): an
    // Iridium SBD IMEI now, a LoRaWAN DevEUI later; an address belongs to
    // one device at most, and goes with it when it is decommissioned. Per
    // device the SBD facts `describe` shows, written in the frame's
    // transaction (MO) or after an MT was accepted (credits).
    r#"
CREATE TABLE link_bindings (
    kind      TEXT NOT NULL,
    address   TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    bound_ms  INTEGER NOT NULL,
    PRIMARY KEY (kind, address)
) STRICT, WITHOUT ROWID;
CREATE INDEX link_bindings_device ON link_bindings(device_id);
CREATE TABLE sbd_status (
    device_id      TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    imei           TEXT NOT NULL,
    last_momsn     INTEGER,
    latitude       REAL,
    longitude      REAL,
    cep_km         REAL,
    last_mo_ms     INTEGER,
    credits_day    TEXT,
    credits_used   INTEGER NOT NULL DEFAULT 0
) STRICT;
"#,
    // LoRaWAN (kind `lorawan` in `link_bindings`: the kind column is free
    // text, so binding DevEUIs needs no change there). Per device the
    // LoRaWAN facts `describe` shows, written in the frame's transaction
    // (uplink) or after the network server accepted a downlink.
    r#"
CREATE TABLE lorawan_status (
    device_id      TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    dev_eui        TEXT NOT NULL,
    last_f_cnt     INTEGER,
    last_dr        INTEGER,
    rssi           REAL,
    snr            REAL,
    last_uplink_ms INTEGER,
    airtime_day    TEXT,
    airtime_us     INTEGER NOT NULL DEFAULT 0,
    downlinks      INTEGER NOT NULL DEFAULT 0
) STRICT;
"#,
    // The change feed of the incremental controller pass (`changes.rs`):
    // a counter, the number of each device's last change that matters to
    // the controller, the "tell me when it is heard from" flag the
    // controller sets on devices it judged offline, and per object the
    // number of its last creation, deletion or change outside `status`.
    // Triggers keep them, so no write path can forget. Recursive triggers
    // are off (SQLite's default): a trigger's own UPDATE fires nothing.
    r#"
CREATE TABLE change_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO change_counter (id, seq) VALUES (0, 0);
ALTER TABLE devices ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN wake_on_contact INTEGER NOT NULL DEFAULT 0;
CREATE INDEX devices_change_seq ON devices(change_seq);
CREATE TABLE object_changes (
    kind       TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    change_seq INTEGER NOT NULL,
    PRIMARY KEY (kind, namespace, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX object_changes_seq ON object_changes(change_seq);
CREATE TRIGGER devices_inserted AFTER INSERT ON devices BEGIN
    UPDATE change_counter SET seq = seq + 1;
    UPDATE devices SET change_seq = (SELECT seq FROM change_counter) WHERE id = NEW.id;
END;
CREATE TRIGGER devices_changed AFTER UPDATE ON devices
WHEN NEW.change_seq IS OLD.change_seq AND (
    NEW.namespace IS NOT OLD.namespace
    OR NEW.approved IS NOT OLD.approved
    OR NEW.registered IS NOT OLD.registered
    OR NEW.cert_used IS NOT OLD.cert_used
    OR NEW.labels IS NOT OLD.labels
    OR NEW.hardware IS NOT OLD.hardware
    OR NEW.status IS NOT OLD.status
    OR NEW.enrolled_at_ms IS NOT OLD.enrolled_at_ms
    OR NEW.decommissioned_at_ms IS NOT OLD.decommissioned_at_ms
    OR NEW.decommissioned_by IS NOT OLD.decommissioned_by
    OR (NEW.last_heartbeat IS NOT OLD.last_heartbeat AND (
        (json_type(NEW.last_heartbeat) IS 'object') IS NOT (json_type(OLD.last_heartbeat) IS 'object')
        OR json_extract(NEW.last_heartbeat, '$.workloads')
            IS NOT json_extract(OLD.last_heartbeat, '$.workloads')))
    OR (NEW.last_seen_ms IS NOT OLD.last_seen_ms
        AND (OLD.last_seen_ms IS NULL OR OLD.wake_on_contact = 1)))
BEGIN
    UPDATE change_counter SET seq = seq + 1;
    UPDATE devices SET change_seq = (SELECT seq FROM change_counter), wake_on_contact = 0
        WHERE id = NEW.id;
END;
-- Inserting (kind, namespace, name) here notes that object's change.
CREATE VIEW object_changed (kind, namespace, name) AS
    SELECT kind, namespace, name FROM object_changes;
CREATE TRIGGER object_changed_noted INSTEAD OF INSERT ON object_changed BEGIN
    UPDATE change_counter SET seq = seq + 1;
    INSERT INTO object_changes (kind, namespace, name, change_seq)
        VALUES (NEW.kind, NEW.namespace, NEW.name, (SELECT seq FROM change_counter))
        ON CONFLICT (kind, namespace, name) DO UPDATE SET change_seq = excluded.change_seq;
END;
CREATE TRIGGER objects_inserted AFTER INSERT ON objects BEGIN
    INSERT INTO object_changed VALUES (NEW.kind, NEW.namespace, NEW.name);
END;
CREATE TRIGGER objects_updated AFTER UPDATE ON objects
WHEN json_remove(NEW.body, '$.status') IS NOT json_remove(OLD.body, '$.status')
BEGIN
    INSERT INTO object_changed VALUES (NEW.kind, NEW.namespace, NEW.name);
END;
CREATE TRIGGER objects_deleted AFTER DELETE ON objects BEGIN
    INSERT INTO object_changed VALUES (OLD.kind, OLD.namespace, OLD.name);
END;
"#,
    // The upload interval a device reported in its last batch (format 3):
    // presence counts it (`controller/presence.rs`), so a change of it
    // marks the device in the change feed (it moves the presence deadline);
    // the trigger is migration 7's with that one condition added.
    r#"
ALTER TABLE devices ADD COLUMN contact_interval_seconds INTEGER;
DROP TRIGGER devices_changed;
CREATE TRIGGER devices_changed AFTER UPDATE ON devices
WHEN NEW.change_seq IS OLD.change_seq AND (
    NEW.namespace IS NOT OLD.namespace
    OR NEW.approved IS NOT OLD.approved
    OR NEW.registered IS NOT OLD.registered
    OR NEW.cert_used IS NOT OLD.cert_used
    OR NEW.labels IS NOT OLD.labels
    OR NEW.hardware IS NOT OLD.hardware
    OR NEW.status IS NOT OLD.status
    OR NEW.enrolled_at_ms IS NOT OLD.enrolled_at_ms
    OR NEW.decommissioned_at_ms IS NOT OLD.decommissioned_at_ms
    OR NEW.decommissioned_by IS NOT OLD.decommissioned_by
    OR NEW.contact_interval_seconds IS NOT OLD.contact_interval_seconds
    OR (NEW.last_heartbeat IS NOT OLD.last_heartbeat AND (
        (json_type(NEW.last_heartbeat) IS 'object') IS NOT (json_type(OLD.last_heartbeat) IS 'object')
        OR json_extract(NEW.last_heartbeat, '$.workloads')
            IS NOT json_extract(OLD.last_heartbeat, '$.workloads')))
    OR (NEW.last_seen_ms IS NOT OLD.last_seen_ms
        AND (OLD.last_seen_ms IS NULL OR OLD.wake_on_contact = 1)))
BEGIN
    UPDATE change_counter SET seq = seq + 1;
    UPDATE devices SET change_seq = (SELECT seq FROM change_counter), wake_on_contact = 0
        WHERE id = NEW.id;
END;
"#,
    // Events and log lines read with a cursor (`store/feed.rs`), per device
    // and fleet-wide, by device time and by arrival: partial indexes per
    // class on `records` (events 2, logs 1; the feed writes the class into
    // its SQL so that these can be used), and two on `json_events`.
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
    // Audit records of the admin listener (who, what, when, how it ended).
    r#"
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    principal TEXT NOT NULL,
    role      TEXT NOT NULL,
    via       TEXT NOT NULL,
    method    TEXT NOT NULL,
    path      TEXT NOT NULL,
    status    INTEGER NOT NULL,
    detail    TEXT NOT NULL
) STRICT;
"#,
    // Heartbeat history by device time (`store/history.rs`: why it pays):
    // heartbeat records and window summaries (class 0) of one device in a
    // range of `at_ms`.
    r#"
CREATE INDEX records_device_heartbeat_time ON records(device_id, at_ms, seq) WHERE class = 0;
"#,
    // Link statistics per device, UTC day and link (`store/link_days.rs`);
    // the day index serves retention.
    r#"
CREATE TABLE link_days (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    day         TEXT NOT NULL,
    link        TEXT NOT NULL,
    windows     INTEGER NOT NULL DEFAULT 0,
    tls_full    INTEGER NOT NULL DEFAULT 0,
    tls_resumed INTEGER NOT NULL DEFAULT 0,
    frames      INTEGER NOT NULL DEFAULT 0,
    bytes_up    INTEGER NOT NULL DEFAULT 0,
    bytes_down  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, day, link)
) STRICT;
CREATE INDEX link_days_day ON link_days(day);
"#,
];

/// Apply connection settings and pending migrations.
pub(super) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers never block the writer. FULL: every commit is fsynced
    // (the WAL) before it returns, so an acknowledged batch survives power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::OutOfRange(format!(
            "database schema version {applied} is newer than this server ({})",
            MIGRATIONS.len()
        )));
    }
    let tx = conn.transaction()?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
    }
    tx.commit()?;
    Ok(())
}
