//! Rows every write path shares: the device must exist, records are
//! inserted deduplicated by `(device, seq)`, a status update applies only
//! when newer than the one applied, and the highest stored `seq` (what a
//! batch acknowledges). Used by batches, Flotta heartbeats and frames alike.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{NewRecord, StatusUpdate, StoreError};

pub(super) fn require_device(conn: &Connection, id: &DeviceId) -> Result<(), StoreError> {
    let found: Option<i64> = conn
        .query_row("SELECT 1 FROM devices WHERE id = ?1", [id.as_str()], |r| {
            r.get(0)
        })
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::DeviceNotFound(id.to_string()))
}

pub(super) fn apply_status(
    conn: &Connection,
    id: &DeviceId,
    u: &StatusUpdate,
    now_ms: i64,
) -> Result<(), StoreError> {
    let seq = u.seq.map(|s| to_i64("heartbeat seq", s)).transpose()?;
    conn.execute(
        "UPDATE devices SET status = ?2, last_heartbeat = ?3,
             hardware = COALESCE(?4, hardware),
             last_heartbeat_seq = COALESCE(?5, last_heartbeat_seq), last_seen_ms = ?6,
             cert_used = 1
         WHERE id = ?1 AND (?5 IS NULL OR last_heartbeat_seq IS NULL OR last_heartbeat_seq < ?5)",
        params![
            id.as_str(),
            u.status,
            u.heartbeat.to_string(),
            u.hardware.as_ref().map(Value::to_string),
            seq,
            now_ms
        ],
    )?;
    Ok(())
}

/// Insert records, deduplicated by `(device, seq)`.
pub(super) fn insert_records(
    conn: &Connection,
    id: &DeviceId,
    records: &[NewRecord],
    now: i64,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO records (device_id, seq, at_ms, class, payload, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in records {
        insert.execute(params![
            id.as_str(),
            to_i64("seq", r.seq)?,
            to_i64("at_ms", r.at_ms)?,
            i64::from(r.class as u8),
            r.payload,
            now
        ])?;
    }
    Ok(())
}

pub(super) fn max_seq(conn: &Connection, id: &DeviceId) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = conn.query_row(
        "SELECT MAX(seq) FROM records WHERE device_id = ?1",
        [id.as_str()],
        |r| r.get(0),
    )?;
    Ok(v.map(to_u64))
}
