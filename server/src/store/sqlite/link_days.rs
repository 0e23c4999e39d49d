//! SQLite side of `store/link_days.rs`: the upsert (in a caller's
//! transaction or alone), a device's days since one, and retention's
//! chunked delete of old days.

use rusqlite::{Connection, params};

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{LinkDay, LinkUsage, StoreError};

/// Add `usage` to the device's row of (`day`, `link`); nothing when empty.
pub(super) fn add(
    conn: &Connection,
    id: &DeviceId,
    link: &str,
    day: &str,
    usage: &LinkUsage,
) -> Result<(), StoreError> {
    if usage.is_empty() {
        return Ok(());
    }
    let n = |what, v| to_i64(what, v);
    conn.prepare_cached(
        "INSERT INTO link_days (device_id, day, link, windows, tls_full, tls_resumed, frames,
             bytes_up, bytes_down) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (device_id, day, link) DO UPDATE SET
             windows = windows + excluded.windows,
             tls_full = tls_full + excluded.tls_full,
             tls_resumed = tls_resumed + excluded.tls_resumed,
             frames = frames + excluded.frames,
             bytes_up = bytes_up + excluded.bytes_up,
             bytes_down = bytes_down + excluded.bytes_down",
    )?
    .execute(params![
        id.as_str(),
        day,
        link,
        n("windows", usage.windows)?,
        n("tls_full", usage.tls_full)?,
        n("tls_resumed", usage.tls_resumed)?,
        n("frames", usage.frames)?,
        n("bytes_up", usage.bytes_up)?,
        n("bytes_down", usage.bytes_down)?,
    ])?;
    Ok(())
}

/// The device's rows from `since_day` on, by day then link.
pub(super) fn since(
    conn: &Connection,
    id: &DeviceId,
    since_day: &str,
) -> Result<Vec<LinkDay>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, link, windows, tls_full, tls_resumed, frames, bytes_up, bytes_down
         FROM link_days WHERE device_id = ?1 AND day >= ?2 ORDER BY day, link",
    )?;
    let rows = stmt.query_map(params![id.as_str(), since_day], |r| {
        Ok(LinkDay {
            day: r.get(0)?,
            link: r.get(1)?,
            usage: LinkUsage {
                windows: to_u64(r.get(2)?),
                tls_full: to_u64(r.get(3)?),
                tls_resumed: to_u64(r.get(4)?),
                frames: to_u64(r.get(5)?),
                bytes_up: to_u64(r.get(6)?),
                bytes_down: to_u64(r.get(7)?),
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Delete at most `limit` rows of days before `before_day`.
pub(super) fn delete_before(
    conn: &Connection,
    before_day: &str,
    limit: usize,
) -> Result<usize, StoreError> {
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(
            "DELETE FROM link_days WHERE rowid IN (
                 SELECT rowid FROM link_days WHERE day < ?1 LIMIT ?2)",
        )?
        .execute(params![before_day, n])?)
}
