//! PostgreSQL side of `store/link_days.rs`: the upsert (in a caller's
//! transaction or alone), a device's days since one, and retention's
//! chunked delete of old days.

use postgres::Transaction;
use postgres::types::Type;

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{LinkDay, LinkUsage, StoreError};

/// Add `usage` to the device's row of (`day`, `link`); nothing when empty.
/// One statement: safe under READ COMMITTED (`ON CONFLICT` takes the row).
pub(super) fn add(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    link: &str,
    day: &str,
    usage: &LinkUsage,
) -> Result<(), StoreError> {
    if usage.is_empty() {
        return Ok(());
    }
    let values = [
        to_i64("windows", usage.windows)?,
        to_i64("tls_full", usage.tls_full)?,
        to_i64("tls_resumed", usage.tls_resumed)?,
        to_i64("frames", usage.frames)?,
        to_i64("bytes_up", usage.bytes_up)?,
        to_i64("bytes_down", usage.bytes_down)?,
    ];
    tx.execute(
        "INSERT INTO link_days (device_id, day, link, windows, tls_full, tls_resumed, frames,
             bytes_up, bytes_down) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (device_id, day, link) DO UPDATE SET
             windows = link_days.windows + excluded.windows,
             tls_full = link_days.tls_full + excluded.tls_full,
             tls_resumed = link_days.tls_resumed + excluded.tls_resumed,
             frames = link_days.frames + excluded.frames,
             bytes_up = link_days.bytes_up + excluded.bytes_up,
             bytes_down = link_days.bytes_down + excluded.bytes_down",
        &[
            &id.as_str(),
            &day,
            &link,
            &values[0],
            &values[1],
            &values[2],
            &values[3],
            &values[4],
            &values[5],
        ],
    )?;
    Ok(())
}

/// The device's rows from `since_day` on, by day then link.
pub(super) fn since(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    since_day: &str,
) -> Result<Vec<LinkDay>, StoreError> {
    let rows = tx.query(
        "SELECT day, link, windows, tls_full, tls_resumed, frames, bytes_up, bytes_down
         FROM link_days WHERE device_id = $1 AND day >= $2 ORDER BY day, link",
        &[&id.as_str(), &since_day],
    )?;
    rows.iter()
        .map(|r| {
            Ok(LinkDay {
                day: r.try_get(0)?,
                link: r.try_get(1)?,
                usage: LinkUsage {
                    windows: to_u64(r.try_get(2)?),
                    tls_full: to_u64(r.try_get(3)?),
                    tls_resumed: to_u64(r.try_get(4)?),
                    frames: to_u64(r.try_get(5)?),
                    bytes_up: to_u64(r.try_get(6)?),
                    bytes_down: to_u64(r.try_get(7)?),
                },
            })
        })
        .collect()
}

/// Delete at most `limit` rows of days before `before_day`.
pub(super) fn delete_before(
    tx: &mut Transaction<'_>,
    before_day: &str,
    limit: usize,
) -> Result<usize, StoreError> {
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let deleted = tx.execute_typed(
        "DELETE FROM link_days WHERE ctid IN (
             SELECT ctid FROM link_days WHERE day < $1 LIMIT $2)",
        &[(&before_day, Type::TEXT), (&n, Type::INT8)],
    )?;
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}
