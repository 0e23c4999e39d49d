//! The SQL of [`super::Store::feed`], the same for both backends but for
//! their placeholders (`?N` in SQLite, `$N` in PostgreSQL).
//!
//! Each source (batch records, JSON heartbeat events) is read in the
//! feed's order with its own `LIMIT` through an index made for it
//! (migration 9 in SQLite, 4 in PostgreSQL: partial indexes on `records`
//! per class, two on `json_events`), then the two are merged. The class is
//! written into the SQL, not bound, so that the planners can use the
//! partial indexes.

use flotta_proto::record::RecordClass;

use super::feed::{FeedKind, FeedOrder, FeedQuery};

/// The statement's parameters, in this order: device (when the query has
/// one), since, cursor t, device, source, a, b (when it has a cursor),
/// limit. The columns: device_id, at_ms, received_ms, payload, src, a, b.
pub(super) fn feed_sql(q: &FeedQuery, placeholder: fn(usize) -> String) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        placeholder(n)
    };
    let device = q.device.as_ref().map(|_| next());
    let since = next();
    let after = q
        .after
        .as_ref()
        .map(|_| [next(), next(), next(), next(), next()]);
    let limit = next();
    let (t, dir, cmp) = match q.order {
        FeedOrder::DeviceTime => ("at_ms", "DESC", "<"),
        FeedOrder::Arrival => ("received_ms", "ASC", ">"),
    };
    let class = match q.kind {
        FeedKind::Events => RecordClass::Event as u8,
        FeedKind::Logs => RecordClass::Log as u8,
    };
    let device_cond = device
        .as_ref()
        .map(|d| format!(" AND device_id = {d}"))
        .unwrap_or_default();
    let after_cond = |src: &str, a: &str, b: &str| match &after {
        Some([ct, cd, cs, ca, cb]) => format!(
            " AND {t} {cmp}= {ct} AND ({t}, device_id, CAST({src} AS BIGINT), {a}, {b}) \
             {cmp} ({ct}, {cd}, {cs}, {ca}, {cb})"
        ),
        None => String::new(),
    };
    let records = format!(
        "SELECT * FROM (SELECT device_id, at_ms, received_ms, payload, CAST(0 AS BIGINT) AS src, \
         seq AS a, CAST(0 AS BIGINT) AS b FROM records \
         WHERE class = {class}{device_cond} AND at_ms >= {since}{after} \
         ORDER BY {t} {dir}, device_id {dir}, seq {dir} LIMIT {limit}) AS r",
        after = after_cond("0", "seq", "CAST(0 AS BIGINT)"),
    );
    let json = format!(
        "SELECT * FROM (SELECT device_id, at_ms, received_ms, payload, CAST(1 AS BIGINT) AS src, \
         at_ms AS a, idx AS b FROM json_events \
         WHERE 1 = 1{device_cond} AND at_ms >= {since}{after} \
         ORDER BY {t} {dir}, device_id {dir}, at_ms {dir}, idx {dir} LIMIT {limit}) AS j",
        after = after_cond("1", "at_ms", "idx"),
    );
    let union = match q.kind {
        FeedKind::Events => format!("{records} UNION ALL {json}"),
        FeedKind::Logs => records,
    };
    format!(
        "SELECT device_id, at_ms, received_ms, payload, src, a, b FROM ({union}) AS feed \
         ORDER BY {t} {dir}, device_id {dir}, src {dir}, a {dir}, b {dir} LIMIT {limit}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_id::DeviceId;
    use crate::store::feed::FeedKey;

    #[test]
    fn parameters_are_numbered_in_order_and_the_class_is_literal() {
        let q = FeedQuery {
            kind: FeedKind::Logs,
            device: Some(DeviceId::parse("d1").unwrap_or_else(|e| panic!("{e}"))),
            order: FeedOrder::Arrival,
            after: Some(FeedKey::start_of(5)),
            since_ms: 0,
            limit: 3,
        };
        let sql = feed_sql(&q, |n| format!("${n}"));
        assert!(
            sql.contains("class = 1 AND device_id = $1 AND at_ms >= $2"),
            "{sql}"
        );
        assert!(sql.contains("($3, $4, $5, $6, $7)"), "{sql}");
        assert!(sql.contains("LIMIT $8"), "{sql}");
        assert!(!sql.contains("json_events"), "{sql}");
    }
}
