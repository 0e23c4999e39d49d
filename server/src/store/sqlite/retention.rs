//! Retention's statements on SQLite (see `store/retention.rs`): each call
//! is one short transaction on the store's one connection, so a batch
//! waits for at most one chunk.

use rusqlite::{Connection, params};

use super::rows::to_i64;
use crate::device_id::DeviceId;
use crate::store::StoreError;
use crate::store::retention::{ExpiredChunk, RetentionPage};

fn device_id(s: String) -> Result<DeviceId, StoreError> {
    DeviceId::parse(&s).map_err(|e| StoreError::OutOfRange(format!("stored device id: {e}")))
}

/// A page of at most `page` devices after `after`, with those whose first
/// record is older than `cutoff_ms` and not their newest.
pub(super) fn page(
    conn: &Connection,
    after: Option<&DeviceId>,
    page: usize,
    cutoff_ms: u64,
) -> Result<RetentionPage, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id,
             (SELECT seq FROM records r WHERE r.device_id = d.id ORDER BY seq LIMIT 1),
             (SELECT received_ms FROM records r WHERE r.device_id = d.id ORDER BY seq LIMIT 1),
             (SELECT MAX(seq) FROM records r WHERE r.device_id = d.id)
         FROM devices d WHERE d.id > ?1 ORDER BY d.id LIMIT ?2",
    )?;
    let after = after.map_or("", DeviceId::as_str);
    let n = i64::try_from(page).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![after, n], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    let cutoff = to_i64("cutoff", cutoff_ms.min(i64::MAX as u64))?;
    let mut out = RetentionPage::default();
    let mut last = None;
    for row in rows {
        let (id, first, received, max) = row?;
        out.looked_at += 1;
        if let (Some(first), Some(received), Some(max)) = (first, received, max)
            && received < cutoff
            && first < max
        {
            out.candidates.push(device_id(id.clone())?);
        }
        last = Some(id);
    }
    if out.looked_at >= page {
        out.next = last.map(device_id).transpose()?;
    }
    Ok(out)
}

/// Delete the records received before `cutoff_ms` among the device's first
/// `limit` by seq, never its newest.
pub(super) fn delete_records(
    conn: &Connection,
    id: &DeviceId,
    cutoff_ms: u64,
    limit: usize,
) -> Result<ExpiredChunk, StoreError> {
    let cutoff = to_i64("cutoff", cutoff_ms.min(i64::MAX as u64))?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let deleted = conn
        .prepare_cached(
            "DELETE FROM records WHERE device_id = ?1 AND received_ms < ?2 AND seq IN (
                 SELECT seq FROM records WHERE device_id = ?1
                     AND seq < (SELECT MAX(seq) FROM records WHERE device_id = ?1)
                 ORDER BY seq LIMIT ?3)",
        )?
        .execute(params![id.as_str(), cutoff, n])?;
    Ok(ExpiredChunk {
        deleted,
        more: limit > 0 && deleted >= limit,
    })
}

/// Delete at most `limit` events of Flotta JSON heartbeats received before
/// `cutoff_ms`, oldest first (by the arrival index).
pub(super) fn delete_json_events(
    conn: &Connection,
    cutoff_ms: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let cutoff = to_i64("cutoff", cutoff_ms.min(i64::MAX as u64))?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(
            "DELETE FROM json_events WHERE (device_id, at_ms, idx, payload) IN (
                 SELECT device_id, at_ms, idx, payload FROM json_events
                 WHERE received_ms < ?1 ORDER BY received_ms LIMIT ?2)",
        )?
        .execute(params![cutoff, n])?)
}
