//! A device's heartbeat-class records in a range of device time, for
//! [`crate::store::history`] to decode (the partial index of migration 6
//! serves the range: `class = 0` is written into the SQL so that the
//! planner can match it).

use postgres::Transaction;
use postgres::types::Type;

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::StoreError;
use crate::store::history::{HeartbeatHistory, HistoryRow, collect};

/// Heartbeat samples of the device with `from_ms <= at_ms < to_ms`, oldest
/// first, at most `limit` rows read.
pub(super) fn read(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    from_ms: u64,
    to_ms: u64,
    limit: usize,
) -> Result<HeartbeatHistory, StoreError> {
    let from = to_i64("from", from_ms.min(i64::MAX as u64))?;
    let to = to_i64("to", to_ms.min(i64::MAX as u64))?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = tx.query_typed(
        "SELECT seq, at_ms, payload FROM records
             WHERE device_id = $1 AND class = 0 AND at_ms >= $2 AND at_ms < $3
             ORDER BY at_ms, seq LIMIT $4",
        &[
            (&id.as_str(), Type::TEXT),
            (&from, Type::INT8),
            (&to, Type::INT8),
            (&n, Type::INT8),
        ],
    )?;
    let rows = rows
        .iter()
        .map(|r| Ok((to_u64(r.try_get(0)?), to_u64(r.try_get(1)?), r.try_get(2)?)))
        .collect::<Result<Vec<HistoryRow>, StoreError>>()?;
    Ok(collect(rows, limit))
}
