//! [`crate::store::Store::feed`] on PostgreSQL: events and log lines with a
//! cursor (the SQL in `store/feed_sql.rs`).

use postgres::Transaction;
use postgres::types::ToSql;

use super::rows::{to_i64, to_u64};
use crate::store::feed::{FeedKey, FeedQuery, FeedRow};
use crate::store::feed_sql::feed_sql;
use crate::store::{FeedKind, FeedOrder, StoreError};

/// The rows of `q`, in its order.
pub(super) fn read(tx: &mut Transaction<'_>, q: &FeedQuery) -> Result<Vec<FeedRow>, StoreError> {
    if q.kind == FeedKind::Logs && q.device.is_none() {
        return Err(StoreError::OutOfRange(
            "log lines are read per device".into(),
        ));
    }
    let device = q.device.as_ref().map(|d| d.as_str().to_owned());
    let since = to_i64("since", q.since_ms.min(i64::MAX as u64))?;
    let after = match &q.after {
        Some(k) => Some((
            to_i64("cursor time", k.t)?,
            k.device.clone(),
            i64::from(k.source),
            to_i64("cursor position", k.a)?,
            to_i64("cursor position", k.b)?,
        )),
        None => None,
    };
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(d) = &device {
        params.push(d);
    }
    params.push(&since);
    if let Some((t, d, s, a, b)) = &after {
        params.extend([t as &(dyn ToSql + Sync), d, s, a, b]);
    }
    params.push(&limit);
    let rows = tx.query(&feed_sql(q, |n| format!("${n}")), &params)?;
    let arrival = q.order == FeedOrder::Arrival;
    rows.iter()
        .map(|r| {
            let (at_ms, received_ms): (i64, i64) = (r.try_get(1)?, r.try_get(2)?);
            let (src, a, b): (i64, i64, i64) = (r.try_get(4)?, r.try_get(5)?, r.try_get(6)?);
            Ok(FeedRow {
                key: FeedKey {
                    t: to_u64(if arrival { received_ms } else { at_ms }),
                    device: r.try_get(0)?,
                    source: u8::try_from(src).unwrap_or(0),
                    a: to_u64(a),
                    b: to_u64(b),
                },
                at_ms: to_u64(at_ms),
                received_ms: to_u64(received_ms),
                payload: r.try_get(3)?,
            })
        })
        .collect()
}
