//! Fragments of records in SQLite (`frame_fragments`, migration 4), inside
//! a frame's transaction: the stored pieces of each record the frame
//! touches are merged with its fragments by the pure reassembler
//! ([`crate::frames::reassembly`]); a completed record is checked exactly
//! as a whole one and returned for insertion, and its pieces deleted; what
//! is still incomplete is stored again as disjoint pieces. Any refusal
//! (conflict, oversized record, too many bytes pending for the device) is
//! returned for the caller to roll the whole frame back.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use rusqlite::{Connection, OptionalExtension, params};

use super::frames::u32_of;
use super::rows::{class_from, to_i64, to_u64};
use crate::decode::check_record;
use crate::device_id::DeviceId;
use crate::frames::reassembly::{FragmentLimits, NewFragment, Partial, Refusal};
use crate::store::{FrameWrite, NewRecord, StatusUpdate, StoreError};

/// The stored pieces of record `seq`, if any.
fn load_partial(
    conn: &Connection,
    id: &DeviceId,
    seq: i64,
    limits: FragmentLimits,
) -> Result<Option<Result<Partial, Refusal>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT start, data, total_len, at_ms, class FROM frame_fragments
         WHERE device_id = ?1 AND seq = ?2 ORDER BY start",
    )?;
    let rows = stmt.query_map(params![id.as_str(), seq], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut partial: Option<Result<Partial, Refusal>> = None;
    for row in rows {
        let (start, data, total_len, at_ms, class) = row?;
        let fragment = NewFragment {
            seq: to_u64(seq),
            at_ms: to_u64(at_ms),
            class: class_from(class),
            total_len: u32_of("fragment length", total_len)?,
            offset: u32_of("fragment start", start)?,
            data,
        };
        partial = Some(match partial {
            None => Partial::from_fragment(&fragment, limits),
            Some(Ok(mut p)) => p.add(&fragment).map(|()| p),
            Some(Err(e)) => Err(e),
        });
    }
    Ok(partial)
}

/// Records completed by a frame, checked, with their status updates.
pub(super) type Completed = Vec<(NewRecord, Option<StatusUpdate>)>;

/// Merge the frame's fragments with the stored ones; store what is still
/// incomplete; return the records completed (checked).
pub(super) fn merge_fragments(
    conn: &Connection,
    id: &DeviceId,
    frame: &FrameWrite,
) -> Result<Result<Completed, Refusal>, StoreError> {
    let mut partials: BTreeMap<u64, Partial> = BTreeMap::new();
    let mut exists =
        conn.prepare_cached("SELECT 1 FROM records WHERE device_id = ?1 AND seq = ?2")?;
    for f in &frame.fragments {
        let seq = to_i64("seq", f.seq)?;
        // A record stored whole already (or by an earlier frame): dedup.
        if exists
            .query_row(params![id.as_str(), seq], |_| Ok(()))
            .optional()?
            .is_some()
        {
            continue;
        }
        let added = match partials.entry(f.seq) {
            Entry::Occupied(mut o) => o.get_mut().add(f),
            Entry::Vacant(v) => match load_partial(conn, id, seq, frame.limits)? {
                Some(Ok(mut p)) => p.add(f).map(|()| {
                    v.insert(p);
                }),
                Some(Err(e)) => Err(e),
                None => Partial::from_fragment(f, frame.limits).map(|p| {
                    v.insert(p);
                }),
            },
        };
        if let Err(refusal) = added {
            return Ok(Err(refusal));
        }
    }
    let mut completed = Vec::new();
    for (seq, partial) in partials {
        let seq_i = to_i64("seq", seq)?;
        conn.execute(
            "DELETE FROM frame_fragments WHERE device_id = ?1 AND seq = ?2",
            params![id.as_str(), seq_i],
        )?;
        if partial.is_complete() {
            let (at_ms, class) = (partial.at_ms, partial.class);
            let bytes = partial.into_record().unwrap_or_default();
            match check_record(seq, at_ms, class, bytes) {
                Ok(done) => completed.push(done),
                Err(e) => return Ok(Err(Refusal::InvalidRecord(e.to_string()))),
            }
            continue;
        }
        let mut insert = conn.prepare_cached(
            "INSERT INTO frame_fragments (device_id, seq, start, data, total_len, at_ms, class)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (start, data) in partial.pieces() {
            insert.execute(params![
                id.as_str(),
                seq_i,
                i64::from(start),
                data,
                i64::from(partial.total_len),
                to_i64("at_ms", partial.at_ms)?,
                i64::from(partial.class as u8)
            ])?;
        }
    }
    let pending: i64 = conn.query_row(
        "SELECT COALESCE(SUM(length(data)), 0) FROM frame_fragments WHERE device_id = ?1",
        [id.as_str()],
        |r| r.get(0),
    )?;
    let pending = to_u64(pending);
    if pending > frame.limits.max_pending_bytes {
        return Ok(Err(Refusal::PendingFull {
            bytes: pending,
            max: frame.limits.max_pending_bytes,
        }));
    }
    Ok(Ok(completed))
}
