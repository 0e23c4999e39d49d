//! Fragments of records in PostgreSQL (`frame_fragments`), inside a
//! frame's transaction: the stored pieces of each record the frame touches
//! are merged with its fragments by the pure reassembler
//! ([`crate::frames::reassembly`]); a completed record is checked exactly
//! as a whole one and returned for insertion, and its pieces deleted; what
//! is still incomplete is stored again as disjoint pieces. Any refusal
//! (conflict, oversized record, too many bytes pending for the device) is
//! returned for the caller to roll the frame back to its savepoint.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use postgres::Transaction;

use super::frames::u32_of;
use super::rows::{class_from, to_i64, to_u64};
use crate::decode::check_record;
use crate::device_id::DeviceId;
use crate::frames::reassembly::{FragmentLimits, NewFragment, Partial, Refusal};
use crate::store::{FrameWrite, NewRecord, StatusUpdate, StoreError};

/// The stored pieces of record `seq`, if any.
fn load_partial(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    seq: i64,
    limits: FragmentLimits,
) -> Result<Option<Result<Partial, Refusal>>, StoreError> {
    let rows = tx.query(
        "SELECT start, data, total_len, at_ms, class FROM frame_fragments
         WHERE device_id = $1 AND seq = $2 ORDER BY start",
        &[&id.as_str(), &seq],
    )?;
    let mut partial: Option<Result<Partial, Refusal>> = None;
    for row in rows {
        let fragment = NewFragment {
            seq: to_u64(seq),
            at_ms: to_u64(row.try_get(3)?),
            class: class_from(row.try_get(4)?),
            total_len: u32_of("fragment length", row.try_get(2)?)?,
            offset: u32_of("fragment start", row.try_get(0)?)?,
            data: row.try_get(1)?,
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
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    frame: &FrameWrite,
) -> Result<Result<Completed, Refusal>, StoreError> {
    let mut partials: BTreeMap<u64, Partial> = BTreeMap::new();
    for f in &frame.fragments {
        let seq = to_i64("seq", f.seq)?;
        // A record stored whole already (or by an earlier frame): dedup.
        if tx
            .query_opt(
                "SELECT 1 FROM records WHERE device_id = $1 AND seq = $2",
                &[&id.as_str(), &seq],
            )?
            .is_some()
        {
            continue;
        }
        let added = match partials.entry(f.seq) {
            Entry::Occupied(mut o) => o.get_mut().add(f),
            Entry::Vacant(v) => match load_partial(tx, id, seq, frame.limits)? {
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
        tx.execute(
            "DELETE FROM frame_fragments WHERE device_id = $1 AND seq = $2",
            &[&id.as_str(), &seq_i],
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
        let insert = tx.prepare(
            "INSERT INTO frame_fragments (device_id, seq, start, data, total_len, at_ms, class)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )?;
        for (start, data) in partial.pieces() {
            tx.execute(
                &insert,
                &[
                    &id.as_str(),
                    &seq_i,
                    &i64::from(start),
                    &data,
                    &i64::from(partial.total_len),
                    &to_i64("at_ms", partial.at_ms)?,
                    &i64::from(partial.class as u8),
                ],
            )?;
        }
    }
    let pending: i64 = tx
        .query_one(
            "SELECT COALESCE(SUM(length(data)), 0)::bigint FROM frame_fragments
             WHERE device_id = $1",
            &[&id.as_str()],
        )?
        .try_get(0)?;
    let pending = to_u64(pending);
    if pending > frame.limits.max_pending_bytes {
        return Ok(Err(Refusal::PendingFull {
            bytes: pending,
            max: frame.limits.max_pending_bytes,
        }));
    }
    Ok(Ok(completed))
}
