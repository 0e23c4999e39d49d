//! A device's heartbeat-class records in a range of device time, for
//! [`crate::store::history`] to decode (the partial index of migration 11
//! serves the range: `class = 0` is written into the SQL so that it can).

use rusqlite::{Connection, params};

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::StoreError;
use crate::store::history::{HeartbeatHistory, HistoryRow, collect};

/// Heartbeat samples of the device with `from_ms <= at_ms < to_ms`, oldest
/// first, at most `limit` rows read.
pub(super) fn read(
    conn: &Connection,
    id: &DeviceId,
    from_ms: u64,
    to_ms: u64,
    limit: usize,
) -> Result<HeartbeatHistory, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, payload FROM records
             WHERE device_id = ?1 AND class = 0 AND at_ms >= ?2 AND at_ms < ?3
             ORDER BY at_ms, seq LIMIT ?4",
    )?;
    let from = to_i64("from", from_ms.min(i64::MAX as u64))?;
    let to = to_i64("to", to_ms.min(i64::MAX as u64))?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![id.as_str(), from, to, n], |r| {
        Ok((to_u64(r.get(0)?), to_u64(r.get(1)?), r.get(2)?))
    })?;
    let rows: Vec<HistoryRow> = rows.collect::<Result<_, _>>()?;
    Ok(collect(rows, limit))
}
