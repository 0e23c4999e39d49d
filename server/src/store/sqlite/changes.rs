//! The change feed in SQLite (`store/changes.rs`): a cursor is the value of
//! `change_counter`, which the schema's triggers raise in the transaction of
//! every change; one writer at a time makes its order the commit order.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::to_i64;
use crate::device_id::DeviceId;
use crate::store::{ChangeCursor, ObjectKey, SeenAt, StoreChanges, StoreError};

fn parse(cursor: &ChangeCursor) -> Result<i64, StoreError> {
    cursor
        .0
        .parse()
        .map_err(|_| StoreError::OutOfRange(format!("not a SQLite change cursor: {}", cursor.0)))
}

/// What changed since `cursor`, read in one transaction.
pub(super) fn since(
    conn: &mut Connection,
    cursor: Option<&ChangeCursor>,
) -> Result<StoreChanges, StoreError> {
    let tx = conn.transaction()?;
    let now: i64 = tx.query_row("SELECT seq FROM change_counter", [], |r| r.get(0))?;
    let mut changes = StoreChanges::start(now.to_string());
    let Some(after) = cursor.map(parse).transpose()? else {
        return Ok(changes);
    };
    {
        let mut stmt = tx.prepare_cached("SELECT id FROM devices WHERE change_seq > ?1")?;
        let ids = stmt.query_map([after], |r| r.get::<_, String>(0))?;
        for id in ids {
            changes.devices.push(StoreChanges::device_id(&id?)?);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT kind, namespace, name FROM object_changes WHERE change_seq > ?1",
        )?;
        let keys = stmt.query_map([after], |r| {
            Ok(ObjectKey {
                kind: r.get(0)?,
                namespace: r.get(1)?,
                name: r.get(2)?,
            })
        })?;
        for key in keys {
            changes.objects.push(key?);
        }
    }
    tx.commit()?;
    Ok(changes)
}

/// Set `wake_on_contact` where "last seen" is still the one judged; return
/// the devices heard from since.
pub(super) fn wake_on_contact(
    conn: &mut Connection,
    devices: &[SeenAt],
) -> Result<Vec<DeviceId>, StoreError> {
    let tx = conn.transaction()?;
    let mut moved = Vec::new();
    for d in devices {
        let seen = d.last_seen_ms.map(|s| to_i64("time", s)).transpose()?;
        let same: Option<bool> = tx
            .query_row(
                "SELECT last_seen_ms IS ?2 FROM devices WHERE id = ?1",
                params![d.id.as_str(), seen],
                |r| r.get(0),
            )
            .optional()?;
        match same {
            Some(true) => {
                tx.execute(
                    "UPDATE devices SET wake_on_contact = 1 WHERE id = ?1 AND wake_on_contact = 0",
                    [d.id.as_str()],
                )?;
            }
            Some(false) => moved.push(d.id.clone()),
            None => {}
        }
    }
    tx.commit()?;
    Ok(moved)
}
