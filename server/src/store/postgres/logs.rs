//! Device log lines (log records of batches and frames), newest first in
//! pages, for `flotta-server logs`.

use flotta_proto::record::RecordClass;
use postgres::Transaction;

use super::rows::{device_event, to_i64};
use crate::device_id::DeviceId;
use crate::store::{DeviceEvent, StoreError};

/// Up to `limit` log records of the device with a device time at or after
/// `since_ms`, newest first, skipping the `offset` newest.
pub(super) fn newest(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    since_ms: u64,
    limit: usize,
    offset: usize,
) -> Result<Vec<DeviceEvent>, StoreError> {
    let log = i64::from(RecordClass::Log as u8);
    let since = to_i64("since", since_ms.min(i64::MAX as u64))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let rows = tx.query(
        "SELECT at_ms, received_ms, payload FROM records
             WHERE device_id = $1 AND class = $2 AND at_ms >= $3
             ORDER BY at_ms DESC, seq DESC LIMIT $4 OFFSET $5",
        &[&id.as_str(), &log, &since, &limit, &offset],
    )?;
    rows.iter().map(device_event).collect()
}
