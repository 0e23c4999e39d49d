//! Retention's statements on PostgreSQL (see `store/retention.rs`): each
//! is one statement, run READ COMMITTED ([`super::tx::Isolation::Locked`]
//! for the deletes): a statement is atomic on its own, `received_ms` is
//! re-checked on the row it deletes, and the highest `seq` of the
//! statement's snapshot is kept (a concurrent batch only adds higher ones),
//! so no row lock of a device and no predicate lock is taken; batches of
//! the device go on while a chunk is deleted. Two replicas running it at
//! once would only delete the same rows twice (the second finds them gone);
//! the server runs it on the leader.

use postgres::Transaction;
use postgres::types::Type;

use super::rows::to_i64;
use crate::device_id::DeviceId;
use crate::store::StoreError;
use crate::store::retention::{ExpiredChunk, RetentionPage};

fn device_id(s: &str) -> Result<DeviceId, StoreError> {
    DeviceId::parse(s).map_err(|e| StoreError::OutOfRange(format!("stored device id: {e}")))
}

/// A page of at most `page` devices after `after`, with those whose first
/// record is older than `cutoff_ms` and not their newest.
pub(super) fn page(
    tx: &mut Transaction<'_>,
    after: Option<&DeviceId>,
    page: usize,
    cutoff_ms: u64,
) -> Result<RetentionPage, StoreError> {
    let after = after.map_or("", DeviceId::as_str);
    let n = i64::try_from(page).unwrap_or(i64::MAX);
    let cutoff = to_i64("cutoff", cutoff_ms.min(i64::MAX as u64))?;
    let rows = tx.query_typed(
        "SELECT d.id, f.seq, f.received_ms,
             (SELECT MAX(seq) FROM records r WHERE r.device_id = d.id)
         FROM (SELECT id FROM devices WHERE id > $1 ORDER BY id LIMIT $2) d
         LEFT JOIN LATERAL (SELECT seq, received_ms FROM records r
             WHERE r.device_id = d.id ORDER BY seq LIMIT 1) f ON true
         ORDER BY d.id",
        &[(&after, Type::TEXT), (&n, Type::INT8)],
    )?;
    let mut out = RetentionPage::default();
    for r in &rows {
        let id: &str = r.try_get(0)?;
        let first: Option<i64> = r.try_get(1)?;
        let received: Option<i64> = r.try_get(2)?;
        let max: Option<i64> = r.try_get(3)?;
        out.looked_at += 1;
        if let (Some(first), Some(received), Some(max)) = (first, received, max)
            && received < cutoff
            && first < max
        {
            out.candidates.push(device_id(id)?);
        }
    }
    if out.looked_at >= page
        && let Some(last) = rows.last()
    {
        out.next = Some(device_id(last.try_get(0)?)?);
    }
    Ok(out)
}

/// Delete the records received before `cutoff_ms` among the device's first
/// `limit` by seq, never its newest.
pub(super) fn delete_records(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    cutoff_ms: u64,
    limit: usize,
) -> Result<ExpiredChunk, StoreError> {
    let cutoff = to_i64("cutoff", cutoff_ms.min(i64::MAX as u64))?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let deleted = tx.execute_typed(
        "DELETE FROM records WHERE device_id = $1 AND received_ms < $2 AND seq IN (
             SELECT seq FROM records WHERE device_id = $1
                 AND seq < (SELECT MAX(seq) FROM records WHERE device_id = $1)
             ORDER BY seq LIMIT $3)",
        &[
            (&id.as_str(), Type::TEXT),
            (&cutoff, Type::INT8),
            (&n, Type::INT8),
        ],
    )?;
    let deleted = usize::try_from(deleted).unwrap_or(usize::MAX);
    Ok(ExpiredChunk {
        deleted,
        more: limit > 0 && deleted >= limit,
    })
}

/// Delete at most `limit` events of Flotta JSON heartbeats received before
/// `cutoff_ms`, oldest first (by the arrival index).
pub(super) fn delete_json_events(
    tx: &mut Transaction<'_>,
    cutoff_ms: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let cutoff = to_i64("cutoff", cutoff_ms.min(i64::MAX as u64))?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let deleted = tx.execute_typed(
        "DELETE FROM json_events WHERE (device_id, at_ms, idx, payload) IN (
             SELECT device_id, at_ms, idx, payload FROM json_events
             WHERE received_ms < $1 ORDER BY received_ms LIMIT $2)",
        &[(&cutoff, Type::INT8), (&n, Type::INT8)],
    )?;
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}
