//! Rows every write path shares: the device must exist, records are
//! inserted deduplicated by `(device, seq)` (`ON CONFLICT DO NOTHING` on the
//! primary key), a status update applies only when newer than the one
//! applied, and the highest stored `seq` (what a batch acknowledges). Used
//! by batches, Flotta heartbeats and frames alike.

use postgres::Transaction;
use serde_json::Value;

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{NewRecord, StatusUpdate, StoreError};

/// The device must exist (its row is read in the transaction, so a
/// concurrent decommission or purge conflicts with this one).
pub(super) fn require_device(tx: &mut Transaction<'_>, id: &DeviceId) -> Result<(), StoreError> {
    let found = tx.query_opt("SELECT 1 FROM devices WHERE id = $1", &[&id.as_str()])?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::DeviceNotFound(id.to_string()))
}

pub(super) fn apply_status(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    u: &StatusUpdate,
    now_ms: i64,
) -> Result<(), StoreError> {
    let seq = u.seq.map(|s| to_i64("heartbeat seq", s)).transpose()?;
    tx.execute(
        "UPDATE devices SET status = $2, last_heartbeat = $3,
             hardware = COALESCE($4::text, hardware),
             last_heartbeat_seq = COALESCE($5::bigint, last_heartbeat_seq), last_seen_ms = $6,
             cert_used = true
         WHERE id = $1
           AND ($5::bigint IS NULL OR last_heartbeat_seq IS NULL OR last_heartbeat_seq < $5::bigint)",
        &[
            &id.as_str(),
            &u.status,
            &u.heartbeat.to_string(),
            &u.hardware.as_ref().map(Value::to_string),
            &seq,
            &now_ms,
        ],
    )?;
    Ok(())
}

/// Insert records, deduplicated by `(device, seq)`.
pub(super) fn insert_records(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    records: &[NewRecord],
    now: i64,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let insert = tx.prepare(
        "INSERT INTO records (device_id, seq, at_ms, class, payload, received_ms)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, seq) DO NOTHING",
    )?;
    for r in records {
        tx.execute(
            &insert,
            &[
                &id.as_str(),
                &to_i64("seq", r.seq)?,
                &to_i64("at_ms", r.at_ms)?,
                &i64::from(r.class as u8),
                &r.payload,
                &now,
            ],
        )?;
    }
    Ok(())
}

pub(super) fn max_seq(tx: &mut Transaction<'_>, id: &DeviceId) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = tx
        .query_one(
            "SELECT MAX(seq) FROM records WHERE device_id = $1",
            &[&id.as_str()],
        )?
        .try_get(0)?;
    Ok(v.map(to_u64))
}
