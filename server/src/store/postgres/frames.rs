//! Sealed frames in PostgreSQL: `frame_keys` (one key id per device, unique
//! server-wide), `frame_contexts` (per key id and epoch: key material,
//! uplink replay window `up_highest`/`up_bitmap`, downlink counter
//! reservation `down_next`), `frame_fragments` and the columns `last_link`,
//! `frames_stored`, `frames_duplicate` of `devices`.
//!
//! [`ingest`] is the transaction of one authenticated frame. It reads the
//! frame's context row `FOR UPDATE`, so two replicas receiving the same
//! frame take turns: the second sees the counter marked and answers
//! `Duplicate`. A refusal of its fragments rolls back to a savepoint taken
//! before the frame's writes. [`reserve`] is a compare-and-set on
//! `down_next`: of two racing reservers exactly one matches.

use flotta_proto::frame::{ReplayWindow, Verdict};
use flotta_proto::frame_keys::FrameKeys;
use postgres::{Row, Transaction};

use super::fragments::merge_fragments;
use super::records::{apply_status, insert_records, require_device};
use super::rows::{device_id, to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{
    FrameIngested, FrameLinkStatus, FrameVerdict, FrameWrite, NewRecord, StatusUpdate, StoreError,
    StoredFrameContext,
};

const CONTEXT_SELECT: &str = "SELECT k.device_id, c.key_id, c.epoch, c.master_secret, \
     c.master_salt, c.created_ms, c.up_highest, c.up_bitmap, c.down_next \
     FROM frame_contexts c JOIN frame_keys k ON k.key_id = c.key_id";

fn corrupt(what: &str) -> StoreError {
    StoreError::OutOfRange(format!("stored frame context: {what}"))
}

pub(super) fn u32_of(what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

fn context_from(r: &Row) -> Result<StoredFrameContext, StoreError> {
    let highest: Option<i64> = r.try_get(6)?;
    let bitmap: Option<i64> = r.try_get(7)?;
    let window = match (highest, bitmap) {
        // The bitmap is a u64 kept in a signed BIGINT, bit for bit.
        (Some(h), Some(b)) => Some((u32_of("up_highest", h)?, b as u64)),
        _ => None,
    };
    let key_id: Vec<u8> = r.try_get(1)?;
    let secret: Vec<u8> = r.try_get(3)?;
    Ok(StoredFrameContext {
        device_id: device_id(r.try_get(0)?)?,
        keys: FrameKeys {
            key_id: key_id.try_into().map_err(|_| corrupt("key id"))?,
            epoch: u32_of("epoch", r.try_get(2)?)?,
            master_secret: secret.try_into().map_err(|_| corrupt("master secret"))?,
            master_salt: r.try_get(4)?,
        },
        created_ms: to_u64(r.try_get(5)?),
        window,
        down_next: r
            .try_get::<_, Option<i64>>(8)?
            .map(|d| u32_of("down_next", d))
            .transpose()?,
    })
}

/// Contexts of a key id, newest first.
pub(super) fn by_key(
    tx: &mut Transaction<'_>,
    key_id: [u8; 4],
) -> Result<Vec<StoredFrameContext>, StoreError> {
    let rows = tx.query(
        &format!("{CONTEXT_SELECT} WHERE c.key_id = $1 ORDER BY c.epoch DESC"),
        &[&key_id.as_slice()],
    )?;
    rows.iter().map(context_from).collect()
}

/// Contexts of a device, newest first.
pub(super) fn by_device(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
) -> Result<Vec<StoredFrameContext>, StoreError> {
    let rows = tx.query(
        &format!("{CONTEXT_SELECT} WHERE k.device_id = $1 ORDER BY c.epoch DESC"),
        &[&id.as_str()],
    )?;
    rows.iter().map(context_from).collect()
}

fn insert_context(
    tx: &mut Transaction<'_>,
    key_id: [u8; 4],
    epoch: u32,
    secret: &[u8; 32],
    salt: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO frame_contexts (key_id, epoch, master_secret, master_salt, created_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &key_id.as_slice(),
            &i64::from(epoch),
            &secret.as_slice(),
            &salt,
            &now,
        ],
    )?;
    Ok(())
}

/// The device's first context, unless it has one.
pub(super) fn create(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    keys: &FrameKeys,
    now_ms: u64,
) -> Result<StoredFrameContext, StoreError> {
    let now = to_i64("time", now_ms)?;
    require_device(tx, id)?;
    if let Some(newest) = by_device(tx, id)?.into_iter().next() {
        return Ok(newest);
    }
    let owner = tx.query_opt(
        "SELECT device_id FROM frame_keys WHERE key_id = $1",
        &[&keys.key_id.as_slice()],
    )?;
    if owner.is_some() {
        return Err(StoreError::Conflict(format!(
            "frame key id {} is taken",
            keys.key_id_hex()
        )));
    }
    tx.execute(
        "INSERT INTO frame_keys (key_id, device_id) VALUES ($1, $2)",
        &[&keys.key_id.as_slice(), &id.as_str()],
    )?;
    insert_context(
        tx,
        keys.key_id,
        keys.epoch,
        &keys.master_secret,
        &keys.master_salt,
        now,
    )?;
    by_device(tx, id)?
        .into_iter()
        .next()
        .ok_or_else(|| corrupt("vanished after insert"))
}

/// A new epoch when the newest is `from_epoch` and no older one is kept.
pub(super) fn rotate(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    from_epoch: u32,
    secret: &[u8; 32],
    salt: &[u8],
    now_ms: u64,
) -> Result<StoredFrameContext, StoreError> {
    let now = to_i64("time", now_ms)?;
    let contexts = by_device(tx, id)?;
    let Some(newest) = contexts.first() else {
        return Err(StoreError::Conflict(format!(
            "device \"{id}\" has no frame context to rotate"
        )));
    };
    if contexts.len() == 1 && newest.keys.epoch == from_epoch {
        let epoch = from_epoch
            .checked_add(1)
            .ok_or_else(|| StoreError::OutOfRange("frame epochs exhausted".into()))?;
        insert_context(tx, newest.keys.key_id, epoch, secret, salt, now)?;
    }
    by_device(tx, id)?
        .into_iter()
        .next()
        .ok_or_else(|| corrupt("vanished during rotation"))
}

/// Persist a downlink counter reservation if nobody else changed it.
pub(super) fn reserve(
    tx: &mut Transaction<'_>,
    key_id: [u8; 4],
    epoch: u32,
    expected: Option<u32>,
    next_free: u32,
) -> Result<(), StoreError> {
    let n = tx.execute(
        "UPDATE frame_contexts SET down_next = $4
         WHERE key_id = $1 AND epoch = $2 AND down_next IS NOT DISTINCT FROM $3::bigint
           AND ($3::bigint IS NULL OR $4::bigint > $3::bigint)",
        &[
            &key_id.as_slice(),
            &i64::from(epoch),
            &expected.map(i64::from),
            &i64::from(next_free),
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
pub(super) fn link_status(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
) -> Result<FrameLinkStatus, StoreError> {
    let row = tx.query_opt(
        "SELECT last_link, frames_stored, frames_duplicate FROM devices WHERE id = $1",
        &[&id.as_str()],
    )?;
    let Some(row) = row else {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    };
    let last_link: Option<String> = row.try_get(0)?;
    let stored: i64 = row.try_get(1)?;
    let duplicate: i64 = row.try_get(2)?;
    let newest = by_device(tx, id)?.into_iter().next();
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
    tx: &mut Transaction<'_>,
    frame: &FrameWrite,
    now_ms: u64,
) -> Result<FrameIngested, StoreError> {
    let now = to_i64("time", now_ms)?;
    let earlier = to_i64("duplicates", frame.earlier_duplicates)?;
    // Lock the key's contexts: concurrent frames of one key take turns.
    tx.execute(
        "SELECT 1 FROM frame_contexts WHERE key_id = $1 FOR UPDATE",
        &[&frame.key_id.as_slice()],
    )?;
    let contexts = by_key(tx, frame.key_id)?;
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
                "UPDATE devices SET frames_duplicate = frames_duplicate + 1 + $2 WHERE id = $1",
                &[&id.as_str(), &earlier],
            )?;
            let day = crate::store::utc_day(now_ms);
            super::link_days::add(tx, id, frame.link, &day, &frame.usage)?;
            outcome.verdict = FrameVerdict::Duplicate;
            return Ok(outcome);
        }
        Verdict::Fresh => {}
    }
    // A savepoint: a refusal of the fragments undoes the frame's writes.
    let mut sp = tx.transaction()?;
    insert_records(&mut sp, id, &frame.records, now)?;
    let completed = match merge_fragments(&mut sp, id, frame)? {
        Ok(c) => c,
        Err(refusal) => {
            sp.rollback()?;
            outcome.verdict = FrameVerdict::Refused(refusal);
            return Ok(outcome);
        }
    };
    let (records, statuses): (Vec<NewRecord>, Vec<Option<StatusUpdate>>) =
        completed.into_iter().unzip();
    insert_records(&mut sp, id, &records, now)?;
    sp.execute(
        "UPDATE devices SET last_seen_ms = $2, last_link = $4,
             frames_stored = frames_stored + 1, frames_duplicate = frames_duplicate + $3
         WHERE id = $1",
        &[&id.as_str(), &now, &earlier, &frame.link],
    )?;
    if let Some(sbd) = &frame.sbd {
        super::links::write_sbd_uplink(&mut sp, id, sbd, now)?;
    }
    if let Some(lora) = &frame.lorawan {
        super::lorawan::write_uplink(&mut sp, id, lora, now)?;
    }
    let day = crate::store::utc_day(now_ms);
    super::link_days::add(&mut sp, id, frame.link, &day, &frame.usage)?;
    let newest_status = statuses
        .into_iter()
        .flatten()
        .chain(frame.status.clone())
        .max_by_key(|u| u.seq);
    if let Some(u) = newest_status {
        apply_status(&mut sp, id, &u, now)?;
    }
    window.mark(frame.counter);
    let (highest, bitmap) = window.parts().unwrap_or((frame.counter, 1));
    sp.execute(
        "UPDATE frame_contexts SET up_highest = $3, up_bitmap = $4 WHERE key_id = $1 AND epoch = $2",
        &[
            &frame.key_id.as_slice(),
            &i64::from(frame.epoch),
            &i64::from(highest),
            &(bitmap as i64),
        ],
    )?;
    // A frame under the newest epoch: the device switched, the older goes.
    let newest_epoch = outcome.newest.as_ref().map(|c| c.keys.epoch);
    if newest_epoch == Some(frame.epoch) && outcome.previous_kept {
        sp.execute(
            "DELETE FROM frame_contexts WHERE key_id = $1 AND epoch < $2",
            &[&frame.key_id.as_slice(), &i64::from(frame.epoch)],
        )?;
        outcome.previous_kept = false;
    }
    sp.commit()?;
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
