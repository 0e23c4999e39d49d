//! Sealed frames in SQLite (migration 4): `frame_keys` (one key id per
//! device, unique server-wide), `frame_contexts` (per key id and epoch: key
//! material, uplink replay window `up_highest`/`up_bitmap`, downlink counter
//! reservation `down_next`), `frame_fragments` (disjoint pieces of
//! incomplete records) and the columns `last_link`, `frames_stored`,
//! `frames_duplicate` of `devices`.
//!
//! [`ingest`] is the transaction of one authenticated frame: nothing of it
//! is visible, and its counter is not marked, unless all of it commits
//! (fragments: `fragments.rs`).

use flotta_proto::frame::{ReplayWindow, Verdict};
use flotta_proto::frame_keys::FrameKeys;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::fragments::merge_fragments;
use super::records::{apply_status, insert_records, require_device};
use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{
    FrameIngested, FrameLinkStatus, FrameVerdict, FrameWrite, NewRecord, StatusUpdate, StoreError,
    StoredFrameContext,
};

const CONTEXT_SELECT: &str = "SELECT k.device_id, c.key_id, c.epoch, c.master_secret, \
     c.master_salt, c.created_ms, c.up_highest, c.up_bitmap, c.down_next \
     FROM frame_contexts c JOIN frame_keys k ON k.key_id = c.key_id";

type RawContext = (
    String,
    Vec<u8>,
    i64,
    Vec<u8>,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn raw_context(r: &Row<'_>) -> rusqlite::Result<RawContext> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::OutOfRange(format!("stored frame context: {what}"))
}

pub(super) fn u32_of(what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

fn context_from(raw: RawContext) -> Result<StoredFrameContext, StoreError> {
    let (device, key_id, epoch, secret, salt, created, highest, bitmap, down) = raw;
    let window = match (highest, bitmap) {
        // The bitmap is a u64 kept in SQLite's signed INTEGER, bit for bit.
        (Some(h), Some(b)) => Some((u32_of("up_highest", h)?, b as u64)),
        _ => None,
    };
    Ok(StoredFrameContext {
        device_id: DeviceId::parse(&device).map_err(|e| corrupt(&e.to_string()))?,
        keys: FrameKeys {
            key_id: key_id.try_into().map_err(|_| corrupt("key id"))?,
            epoch: u32_of("epoch", epoch)?,
            master_secret: secret.try_into().map_err(|_| corrupt("master secret"))?,
            master_salt: salt,
        },
        created_ms: to_u64(created),
        window,
        down_next: down.map(|d| u32_of("down_next", d)).transpose()?,
    })
}

fn select(
    conn: &Connection,
    filter: &str,
    arg: &dyn rusqlite::ToSql,
) -> Result<Vec<StoredFrameContext>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{CONTEXT_SELECT} WHERE {filter} ORDER BY c.epoch DESC"
    ))?;
    let rows = stmt.query_map([arg], raw_context)?;
    rows.map(|r| context_from(r?)).collect()
}

/// Contexts of a key id, newest first.
pub(super) fn by_key(
    conn: &Connection,
    key_id: [u8; 4],
) -> Result<Vec<StoredFrameContext>, StoreError> {
    select(conn, "c.key_id = ?1", &key_id.to_vec())
}

/// Contexts of a device, newest first.
pub(super) fn by_device(
    conn: &Connection,
    id: &DeviceId,
) -> Result<Vec<StoredFrameContext>, StoreError> {
    select(conn, "k.device_id = ?1", &id.as_str())
}

fn insert_context(
    conn: &Connection,
    key_id: [u8; 4],
    epoch: u32,
    secret: &[u8; 32],
    salt: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO frame_contexts (key_id, epoch, master_secret, master_salt, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key_id.to_vec(),
            i64::from(epoch),
            secret.to_vec(),
            salt,
            now
        ],
    )?;
    Ok(())
}

/// The device's first context, unless it has one.
pub(super) fn create(
    conn: &mut Connection,
    id: &DeviceId,
    keys: &FrameKeys,
    now_ms: u64,
) -> Result<StoredFrameContext, StoreError> {
    let now = to_i64("time", now_ms)?;
    let tx = conn.transaction()?;
    require_device(&tx, id)?;
    if let Some(newest) = by_device(&tx, id)?.into_iter().next() {
        return Ok(newest);
    }
    let owner: Option<String> = tx
        .query_row(
            "SELECT device_id FROM frame_keys WHERE key_id = ?1",
            [keys.key_id.to_vec()],
            |r| r.get(0),
        )
        .optional()?;
    if owner.is_some() {
        return Err(StoreError::Conflict(format!(
            "frame key id {} is taken",
            keys.key_id_hex()
        )));
    }
    tx.execute(
        "INSERT INTO frame_keys (key_id, device_id) VALUES (?1, ?2)",
        params![keys.key_id.to_vec(), id.as_str()],
    )?;
    insert_context(
        &tx,
        keys.key_id,
        keys.epoch,
        &keys.master_secret,
        &keys.master_salt,
        now,
    )?;
    let newest = by_device(&tx, id)?.into_iter().next();
    tx.commit()?;
    newest.ok_or_else(|| corrupt("vanished after insert"))
}

/// A new epoch when the newest is `from_epoch` and no older one is kept.
pub(super) fn rotate(
    conn: &mut Connection,
    id: &DeviceId,
    from_epoch: u32,
    secret: &[u8; 32],
    salt: &[u8],
    now_ms: u64,
) -> Result<StoredFrameContext, StoreError> {
    let now = to_i64("time", now_ms)?;
    let tx = conn.transaction()?;
    let contexts = by_device(&tx, id)?;
    let Some(newest) = contexts.first() else {
        return Err(StoreError::Conflict(format!(
            "device \"{id}\" has no frame context to rotate"
        )));
    };
    if contexts.len() == 1 && newest.keys.epoch == from_epoch {
        let epoch = from_epoch
            .checked_add(1)
            .ok_or_else(|| StoreError::OutOfRange("frame epochs exhausted".into()))?;
        insert_context(&tx, newest.keys.key_id, epoch, secret, salt, now)?;
    }
    let newest = by_device(&tx, id)?.into_iter().next();
    tx.commit()?;
    newest.ok_or_else(|| corrupt("vanished during rotation"))
}

/// Persist a downlink counter reservation if nobody else changed it.
pub(super) fn reserve(
    conn: &Connection,
    key_id: [u8; 4],
    epoch: u32,
    expected: Option<u32>,
    next_free: u32,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE frame_contexts SET down_next = ?4
         WHERE key_id = ?1 AND epoch = ?2 AND down_next IS ?3 AND (?3 IS NULL OR ?4 > ?3)",
        params![
            key_id.to_vec(),
            i64::from(epoch),
            expected.map(i64::from),
            i64::from(next_free)
        ],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "downlink counters of frame context {}/{epoch} changed or the context is gone",
            flotta_proto::frame_keys::hex(&key_id)
        )));
    }
    Ok(())
}

/// The facts `describe` shows.
pub(super) fn link_status(conn: &Connection, id: &DeviceId) -> Result<FrameLinkStatus, StoreError> {
    let row: Option<(Option<String>, i64, i64)> = conn
        .query_row(
            "SELECT last_link, frames_stored, frames_duplicate FROM devices WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((last_link, stored, duplicate)) = row else {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    };
    let newest = by_device(conn, id)?.into_iter().next();
    Ok(FrameLinkStatus {
        last_link,
        key_id: newest.as_ref().map(|c| c.keys.key_id),
        epoch: newest.as_ref().map(|c| c.keys.epoch),
        highest_uplink_counter: newest.as_ref().and_then(|c| c.window).map(|w| w.0),
        downlink_counter: newest.as_ref().and_then(|c| c.down_next),
        frames_stored: to_u64(stored),
        frames_duplicate: to_u64(duplicate),
    })
}

/// Store one authenticated frame (see [`crate::store::Store::ingest_frame`]).
pub(super) fn ingest(
    conn: &mut Connection,
    frame: &FrameWrite,
    now_ms: u64,
) -> Result<FrameIngested, StoreError> {
    let now = to_i64("time", now_ms)?;
    let earlier = to_i64("duplicates", frame.earlier_duplicates)?;
    let tx = conn.transaction()?;
    let contexts = by_key(&tx, frame.key_id)?;
    let mut outcome = FrameIngested {
        verdict: FrameVerdict::UnknownContext,
        window: None,
        newest: contexts.first().cloned(),
        previous_kept: contexts.len() > 1,
    };
    let Some(ctx) = contexts.iter().find(|c| c.keys.epoch == frame.epoch) else {
        return Ok(outcome);
    };
    let id = &ctx.device_id;
    let mut window = ReplayWindow::from_parts(ctx.window);
    outcome.window = window.parts();
    match window.check(frame.counter) {
        Verdict::TooOld => {
            outcome.verdict = FrameVerdict::TooOld;
            return Ok(outcome);
        }
        Verdict::Duplicate => {
            tx.execute(
                "UPDATE devices SET frames_duplicate = frames_duplicate + 1 + ?2 WHERE id = ?1",
                params![id.as_str(), earlier],
            )?;
            let day = crate::store::utc_day(now_ms);
            super::link_days::add(&tx, id, frame.link, &day, &frame.usage)?;
            tx.commit()?;
            outcome.verdict = FrameVerdict::Duplicate;
            return Ok(outcome);
        }
        Verdict::Fresh => {}
    }
    insert_records(&tx, id, &frame.records, now)?;
    let completed = match merge_fragments(&tx, id, frame)? {
        Ok(c) => c,
        Err(refusal) => {
            // Dropping `tx` rolls back whatever the frame wrote.
            outcome.verdict = FrameVerdict::Refused(refusal);
            return Ok(outcome);
        }
    };
    let (records, statuses): (Vec<NewRecord>, Vec<Option<StatusUpdate>>) =
        completed.into_iter().unzip();
    insert_records(&tx, id, &records, now)?;
    tx.execute(
        "UPDATE devices SET last_seen_ms = ?2, last_link = ?4, frames_stored = frames_stored + 1,
         frames_duplicate = frames_duplicate + ?3 WHERE id = ?1",
        params![id.as_str(), now, earlier, frame.link],
    )?;
    if let Some(sbd) = &frame.sbd {
        super::links::write_sbd_uplink(&tx, id, sbd, now)?;
    }
    if let Some(lora) = &frame.lorawan {
        super::lorawan::write_uplink(&tx, id, lora, now)?;
    }
    let day = crate::store::utc_day(now_ms);
    super::link_days::add(&tx, id, frame.link, &day, &frame.usage)?;
    // The newest heartbeat of the frame wins (apply_status also ignores
    // one older than what is applied).
    let newest_status = statuses
        .into_iter()
        .flatten()
        .chain(frame.status.clone())
        .max_by_key(|u| u.seq);
    if let Some(u) = newest_status {
        apply_status(&tx, id, &u, now)?;
    }
    window.mark(frame.counter);
    let (highest, bitmap) = window.parts().unwrap_or((frame.counter, 1));
    tx.execute(
        "UPDATE frame_contexts SET up_highest = ?3, up_bitmap = ?4 WHERE key_id = ?1 AND epoch = ?2",
        params![
            frame.key_id.to_vec(),
            i64::from(frame.epoch),
            i64::from(highest),
            bitmap as i64
        ],
    )?;
    // A frame under the newest epoch: the device switched, the older goes.
    let newest_epoch = outcome.newest.as_ref().map(|c| c.keys.epoch);
    if newest_epoch == Some(frame.epoch) && outcome.previous_kept {
        tx.execute(
            "DELETE FROM frame_contexts WHERE key_id = ?1 AND epoch < ?2",
            params![frame.key_id.to_vec(), i64::from(frame.epoch)],
        )?;
        outcome.previous_kept = false;
    }
    tx.commit()?;
    outcome.window = window.parts();
    if let Some(n) = outcome
        .newest
        .as_mut()
        .filter(|n| n.keys.epoch == frame.epoch)
    {
        n.window = outcome.window;
    }
    outcome.verdict = FrameVerdict::Stored {
        completed: records.iter().map(|r| r.class).collect(),
    };
    Ok(outcome)
}
