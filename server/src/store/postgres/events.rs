//! Device events: event records of batches (table `records`) and events of
//! Flotta JSON heartbeats (table `json_events`, deduplicated by
//! (device, sent time, position, payload)), read together.

use flotta_proto::record::RecordClass;
use postgres::Transaction;

use super::rows::{device_event, to_i64};
use crate::device_id::DeviceId;
use crate::store::{DeviceEvent, JsonEvent, StoreError};

/// Store the events of a heartbeat; those already stored are skipped.
pub(super) fn insert(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    events: &[JsonEvent],
    now: i64,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let insert = tx.prepare(
        "INSERT INTO json_events (device_id, at_ms, idx, payload, received_ms)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )?;
    for e in events {
        tx.execute(
            &insert,
            &[
                &id.as_str(),
                &to_i64("event time", e.at_ms)?,
                &i64::from(e.index),
                &e.payload,
                &now,
            ],
        )?;
    }
    Ok(())
}

/// The newest `limit` events of the device, oldest first (by device time,
/// then sequence number or position in the heartbeat).
pub(super) fn newest(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    limit: usize,
) -> Result<Vec<DeviceEvent>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let event = i64::from(RecordClass::Event as u8);
    let rows = tx.query(
        "SELECT at_ms, received_ms, payload FROM (
             SELECT at_ms, received_ms, payload, seq AS k1, 0::bigint AS k2 FROM records
                 WHERE device_id = $1 AND class = $2
             UNION ALL
             SELECT at_ms, received_ms, payload, 0::bigint, idx FROM json_events
                 WHERE device_id = $1
             ORDER BY at_ms DESC, k1 DESC, k2 DESC LIMIT $3
         ) AS newest ORDER BY at_ms, k1, k2",
        &[&id.as_str(), &event, &limit],
    )?;
    rows.iter().map(device_event).collect()
}
