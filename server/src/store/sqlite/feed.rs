//! [`crate::store::Store::feed`] on SQLite: events and log lines with a
//! cursor (the SQL in `store/feed_sql.rs`).

use rusqlite::{Connection, params_from_iter, types::Value as Sql};

use super::rows::{to_i64, to_u64};
use crate::store::feed::{FeedKey, FeedQuery, FeedRow};
use crate::store::feed_sql::feed_sql;
use crate::store::{FeedKind, FeedOrder, StoreError};

/// The rows of `q`, in its order.
pub(super) fn read(conn: &Connection, q: &FeedQuery) -> Result<Vec<FeedRow>, StoreError> {
    if q.kind == FeedKind::Logs && q.device.is_none() {
        return Err(StoreError::OutOfRange(
            "log lines are read per device".into(),
        ));
    }
    let mut stmt = conn.prepare_cached(&feed_sql(q, |n| format!("?{n}")))?;
    let mut params: Vec<Sql> = Vec::new();
    if let Some(d) = &q.device {
        params.push(Sql::Text(d.as_str().to_owned()));
    }
    params.push(Sql::Integer(to_i64(
        "since",
        q.since_ms.min(i64::MAX as u64),
    )?));
    if let Some(k) = &q.after {
        params.push(Sql::Integer(to_i64("cursor time", k.t)?));
        params.push(Sql::Text(k.device.clone()));
        params.push(Sql::Integer(i64::from(k.source)));
        params.push(Sql::Integer(to_i64("cursor position", k.a)?));
        params.push(Sql::Integer(to_i64("cursor position", k.b)?));
    }
    params.push(Sql::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    let arrival = q.order == FeedOrder::Arrival;
    let rows = stmt.query_map(params_from_iter(params), |r| {
        let (device, at_ms, received_ms): (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let (src, a, b): (i64, i64, i64) = (r.get(4)?, r.get(5)?, r.get(6)?);
        Ok(FeedRow {
            key: FeedKey {
                t: to_u64(if arrival { received_ms } else { at_ms }),
                device,
                source: u8::try_from(src).unwrap_or(0),
                a: to_u64(a),
                b: to_u64(b),
            },
            at_ms: to_u64(at_ms),
            received_ms: to_u64(received_ms),
            payload: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
