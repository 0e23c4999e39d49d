//! The fleet table's selection: counts before filters, every filter, the
//! sorts, and pages that cover the matching rows once.

use super::*;

fn row(i: usize) -> Row {
    let mut labels = BTreeMap::new();
    labels.insert("site".into(), format!("s{}", i % 3));
    if i.is_multiple_of(2) {
        labels.insert("even".into(), "yes".into());
    }
    Row {
        id: format!("dev-{i:05}"),
        namespace: if i.is_multiple_of(4) {
            "lab"
        } else {
            "default"
        }
        .into(),
        presence: ["online", "offline", "unknown"][i % 3].into(),
        phase: ["up", "degraded", ""][i % 3].into(),
        link: ["ip", "lorawan", "sbd", "ip"][i % 4].into(),
        labels,
        last_seen_ms: (!i.is_multiple_of(5)).then_some(1_000_000_000 - i as u64 * 60_000),
        pending: i.is_multiple_of(7),
    }
}

const NOW: u64 = 1_000_000_000;

#[test]
fn counts_are_of_the_whole_fleet_and_filters_combine() {
    let rows: Vec<Row> = (0..300).map(row).collect();
    let q = FleetQuery {
        ns: "lab".into(),
        presence: "online".into(),
        label: "even=yes, site".into(),
        ..FleetQuery::default()
    };
    let s = select(&rows, &q, NOW);
    assert_eq!(s.counts.total, 300);
    assert_eq!(s.counts.presence["online"], 100);
    assert_eq!(s.counts.phase["none"], 100);
    assert_eq!(s.counts.pending, 300usize.div_ceil(7));
    let want: Vec<&Row> = rows
        .iter()
        .filter(|r| r.namespace == "lab" && r.presence == "online" && r.labels.contains_key("even"))
        .collect();
    assert_eq!(s.matching, want.len());
    assert!(
        s.rows
            .iter()
            .all(|r| r.namespace == "lab" && r.presence == "online")
    );
    for (seen, f) in [
        (
            "never",
            Box::new(|r: &Row| r.last_seen_ms.is_none()) as Box<dyn Fn(&Row) -> bool>,
        ),
        (
            "1h",
            Box::new(|r: &Row| r.last_seen_ms.is_some_and(|t| NOW - t <= 3_600_000)),
        ),
    ] {
        let q = FleetQuery {
            seen: seen.into(),
            per: 500,
            ..FleetQuery::default()
        };
        let s = select(&rows, &q, NOW);
        assert_eq!(s.matching, rows.iter().filter(|r| f(r)).count(), "{seen}");
    }
    let q = FleetQuery {
        link: "sbd".into(),
        phase: "none".into(),
        per: 500,
        ..FleetQuery::default()
    };
    let s = select(&rows, &q, NOW);
    assert!(s.rows.iter().all(|r| r.link == "sbd" && r.phase.is_empty()));
    assert_eq!(
        s.matching,
        rows.iter()
            .filter(|r| r.link == "sbd" && r.phase.is_empty())
            .count()
    );
}

#[test]
fn pages_cover_every_matching_row_once_in_sort_order() {
    let rows: Vec<Row> = (0..1234).rev().map(row).collect();
    for (sort, dir) in [
        ("", ""),
        ("name", "desc"),
        ("seen", ""),
        ("presence", ""),
        ("namespace", "desc"),
    ] {
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let q = FleetQuery {
                sort: sort.into(),
                dir: dir.into(),
                page,
                per: 100,
                ..FleetQuery::default()
            };
            let s = select(&rows, &q, NOW);
            assert_eq!(s.pages, 13);
            seen.extend(s.rows.iter().cloned());
            if page == s.pages {
                break;
            }
            page += 1;
        }
        assert_eq!(seen.len(), 1234, "{sort} {dir}");
        let mut ids: Vec<&str> = seen.iter().map(|r| r.id.as_str()).collect();
        match (sort, dir) {
            ("", "") => assert!(ids.windows(2).all(|w| w[0] < w[1])),
            ("name", "desc") => assert!(ids.windows(2).all(|w| w[0] > w[1])),
            ("seen", "") => assert!(
                seen.windows(2)
                    .all(|w| w[0].last_seen_ms >= w[1].last_seen_ms)
            ),
            ("presence", "") => assert!(seen.windows(2).all(|w| w[0].presence <= w[1].presence)),
            _ => assert!(seen.windows(2).all(|w| w[0].namespace >= w[1].namespace)),
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1234, "no row twice");
    }
    // A page past the end shows the last one.
    let s = select(
        &rows,
        &FleetQuery {
            page: 99,
            ..FleetQuery::default()
        },
        NOW,
    );
    assert_eq!(s.page, s.pages);
}

#[test]
fn links_keep_the_view() {
    let q = FleetQuery {
        presence: "offline".into(),
        label: "a=b c".into(),
        page: 3,
        ..FleetQuery::default()
    };
    let url = href(&q, |q| q.page = 4);
    assert_eq!(url, "/ui/?presence=offline&label=a%3Db%20c&page=4");
}

#[test]
fn rows_are_reused_for_a_few_seconds_then_read_again() {
    use crate::device_id::{DeviceId, Namespace};
    use crate::store::{SqliteStore, Store};
    let s = SqliteStore::in_memory().unwrap();
    let ns = Namespace::parse("default").unwrap();
    let enrol = |id: &str| {
        s.enrol(&DeviceId::parse(id).unwrap(), &ns, None, true, NOW)
            .unwrap();
    };
    enrol("a");
    let cache = FleetCache::default();
    let q = FleetQuery::default();
    let first = load(&s, &s, &cache, &q, NOW).unwrap();
    assert_eq!((first.selection.counts.total, first.read_at_ms), (1, NOW));
    enrol("b");
    let reused = load(&s, &s, &cache, &q, NOW + CACHE_MS - 1).unwrap();
    assert_eq!((reused.selection.counts.total, reused.read_at_ms), (1, NOW));
    // The link filter needs every device's link: a read of its own.
    let by_link = FleetQuery {
        link: "ip".into(),
        ..FleetQuery::default()
    };
    assert_eq!(
        load(&s, &s, &cache, &by_link, NOW + 1)
            .unwrap()
            .selection
            .counts
            .total,
        2
    );
    let later = load(&s, &s, &cache, &q, NOW + CACHE_MS + 1).unwrap();
    assert_eq!(
        (later.selection.counts.total, later.read_at_ms),
        (2, NOW + CACHE_MS + 1)
    );
}
