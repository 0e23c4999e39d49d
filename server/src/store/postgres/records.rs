//! Rows every write path shares: the device must exist, records are
//! inserted deduplicated by `(device, seq)` (`ON CONFLICT DO NOTHING` on the
//! primary key), a status update applies only when newer than the one
//! applied, and the highest stored `seq` (what a batch acknowledges). Used
//! by batches, Flotta heartbeats and frames alike.

use postgres::Transaction;
use postgres::types::Type;
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

/// The device must exist, and its row is locked until the transaction ends
/// (`FOR NO KEY UPDATE`, what the `UPDATE` of its row takes anyway): the
/// READ COMMITTED writes of one device (batches, Flotta heartbeats) take
/// turns on it, and each statement after it sees what the previous holder
/// committed. A decommissioning (`FOR UPDATE`) waits for it, or it for the
/// decommissioning.
pub(super) fn lock_device(tx: &mut Transaction<'_>, id: &DeviceId) -> Result<(), StoreError> {
    let found = tx.query_typed_opt(
        "SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE",
        &[(&id.as_str(), Type::TEXT)],
    )?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::DeviceNotFound(id.to_string()))
}

/// A batch's write of the device row, in **one** `UPDATE` (which also
/// locks the row, as [`lock_device`] does): "last seen", and the batch's
/// status when newer than the one applied (as [`apply_status`]), and the
/// upload interval the batch reported (kept when it reported none). Two
/// `UPDATE`s cost a second round trip, a second row version and a second
/// run of the change-feed trigger (`flotta_device_changed`, schema
/// migration 2) per window; one gives the same row and the same change
/// mark (every `SET` reads the old row, and so does the trigger).
pub(super) fn touch_for_batch(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    status: Option<&StatusUpdate>,
    now_ms: i64,
    upload_interval_seconds: Option<i64>,
) -> Result<(), StoreError> {
    let seq = status
        .and_then(|u| u.seq)
        .map(|s| to_i64("heartbeat seq", s))
        .transpose()?;
    // Whether the batch's status is newer than the applied one (every `SET`
    // and this read the old row).
    const NEWER: &str = "$3::text IS NOT NULL AND ($6::bigint IS NULL \
        OR last_heartbeat_seq IS NULL OR last_heartbeat_seq < $6::bigint)";
    let n = tx.execute_typed(
        &format!(
            "UPDATE devices SET last_seen_ms = $2, cert_used = true, last_link = 'tls',
                 status = CASE WHEN {NEWER} THEN $3 ELSE status END,
                 last_heartbeat = CASE WHEN {NEWER} THEN $4 ELSE last_heartbeat END,
                 hardware = CASE WHEN {NEWER} THEN COALESCE($5, hardware) ELSE hardware END,
                 last_heartbeat_seq = CASE WHEN {NEWER} THEN COALESCE($6, last_heartbeat_seq)
                     ELSE last_heartbeat_seq END,
                 contact_interval_seconds = COALESCE($7, contact_interval_seconds)
             WHERE id = $1"
        ),
        &[
            (&id.as_str(), Type::TEXT),
            (&now_ms, Type::INT8),
            (&status.map(|u| u.status.as_str()), Type::TEXT),
            (&status.map(|u| u.heartbeat.to_string()), Type::TEXT),
            (
                &status.and_then(|u| u.hardware.as_ref().map(Value::to_string)),
                Type::TEXT,
            ),
            (&seq, Type::INT8),
            (&upload_interval_seconds, Type::INT8),
        ],
    )?;
    if n == 0 {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    }
    Ok(())
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

/// Insert records, deduplicated by `(device, seq)`, in **one statement**:
/// the batch's columns go as four arrays and `unnest` turns them back into
/// rows. One statement per record cost a window of 60 heartbeats 60 round
/// trips (and 60 executor starts) inside the transaction; this is one. The
/// primary key and `ON CONFLICT DO NOTHING` still deduplicate, against
/// stored rows and within the batch alike (the first of two equal `seq`s is
/// kept, as when they were inserted one by one), and nothing is
/// acknowledged before the caller's transaction commits.
pub(super) fn insert_records(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    records: &[NewRecord],
    now: i64,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len();
    let (mut seqs, mut ats, mut classes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut payloads: Vec<&[u8]> = Vec::with_capacity(n);
    for r in records {
        seqs.push(to_i64("seq", r.seq)?);
        ats.push(to_i64("at_ms", r.at_ms)?);
        classes.push(i64::from(r.class as u8));
        payloads.push(&r.payload);
    }
    // `WITH ORDINALITY … ORDER BY` keeps the batch's order, so which of two
    // equal `seq`s is stored does not depend on the plan.
    tx.execute_typed(
        "INSERT INTO records (device_id, seq, at_ms, class, payload, received_ms)
         SELECT $1, r.seq, r.at_ms, r.class, r.payload, $6
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[])
             WITH ORDINALITY AS r(seq, at_ms, class, payload, n)
         ORDER BY r.n
         ON CONFLICT (device_id, seq) DO NOTHING",
        &[
            (&id.as_str(), Type::TEXT),
            (&seqs, Type::INT8_ARRAY),
            (&ats, Type::INT8_ARRAY),
            (&classes, Type::INT8_ARRAY),
            (&payloads, Type::BYTEA_ARRAY),
            (&now, Type::INT8),
        ],
    )?;
    Ok(())
}

pub(super) fn max_seq(tx: &mut Transaction<'_>, id: &DeviceId) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = tx
        .query_typed_one(
            "SELECT MAX(seq) FROM records WHERE device_id = $1",
            &[(&id.as_str(), Type::TEXT)],
        )?
        .try_get(0)?;
    Ok(v.map(to_u64))
}
