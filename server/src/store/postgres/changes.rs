//! The change feed in PostgreSQL (`store/changes.rs`): the schema's
//! triggers stamp a changed device row, and each changed object's row in
//! `object_changes`, with the id of the writing transaction
//! (`pg_current_xact_id()`); a cursor is the reader's snapshot
//! (`pg_current_snapshot()`). What changed since a snapshot is what its
//! transaction could not see: an id at or above its `xmin` and not visible
//! in it. A transaction still running when a cursor is taken is invisible
//! to it, so its changes come with a later call, however late it commits.

use postgres::Transaction;

use crate::store::{ChangeCursor, ObjectKey, SeenAt, StoreChanges, StoreError};

/// What changed since `cursor` (the transaction's own snapshot is the new
/// cursor: it runs REPEATABLE READ, which keeps one snapshot for every
/// statement).
pub(super) fn since(
    tx: &mut Transaction<'_>,
    cursor: Option<&ChangeCursor>,
) -> Result<StoreChanges, StoreError> {
    let now: String = tx
        .query_one("SELECT pg_current_snapshot()::text", &[])?
        .try_get(0)?;
    let mut changes = StoreChanges::start(now);
    let Some(ChangeCursor(before)) = cursor else {
        return Ok(changes);
    };
    for row in tx.query(
        "SELECT id FROM devices
         WHERE change_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
           AND NOT pg_visible_in_snapshot(change_xid, $1::text::pg_snapshot)",
        &[before],
    )? {
        changes
            .devices
            .push(StoreChanges::device_id(row.try_get(0)?)?);
    }
    for row in tx.query(
        "SELECT kind, namespace, name FROM object_changes
         WHERE change_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
           AND NOT pg_visible_in_snapshot(change_xid, $1::text::pg_snapshot)",
        &[before],
    )? {
        changes.objects.push(ObjectKey {
            kind: row.try_get(0)?,
            namespace: row.try_get(1)?,
            name: row.try_get(2)?,
        });
    }
    Ok(changes)
}

/// Set `wake_on_contact` where "last seen" is still the one judged; return
/// the devices heard from since.
///
/// Runs READ COMMITTED: each device's row is read `FOR UPDATE` (its newest
/// version, locked), so a batch either committed before (its "last seen"
/// is read: the device is returned) or waits and then finds the mark, which
/// its `UPDATE` clears while stamping the change (the trigger).
pub(super) fn wake_on_contact(
    tx: &mut Transaction<'_>,
    devices: &[SeenAt],
) -> Result<Vec<crate::device_id::DeviceId>, StoreError> {
    let mut moved = Vec::new();
    for d in devices {
        let seen = d
            .last_seen_ms
            .map(|s| super::rows::to_i64("time", s))
            .transpose()?;
        let same = tx
            .query_opt(
                "SELECT last_seen_ms IS NOT DISTINCT FROM $2 FROM devices WHERE id = $1
                 FOR UPDATE",
                &[&d.id.as_str(), &seen],
            )?
            .map(|r| r.try_get::<_, bool>(0))
            .transpose()?;
        match same {
            Some(true) => {
                tx.execute(
                    "UPDATE devices SET wake_on_contact = true
                     WHERE id = $1 AND NOT wake_on_contact",
                    &[&d.id.as_str()],
                )?;
            }
            Some(false) => moved.push(d.id.clone()),
            None => {}
        }
    }
    Ok(moved)
}
