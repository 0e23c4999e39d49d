//! The fleet page (`GET /ui/`): counts by presence and phase, and one page
//! of a table of every device with filters (namespace, presence, phase,
//! link, label selector, last seen, name), a sort and paging. Everything
//! is in the query string, so a view is a link and works without
//! JavaScript. The rows come from two reads (the devices, and the
//! EdgeDevice objects for the presence the controller wrote), then are
//! filtered, counted and sorted in memory; only the page is rendered
//! (bench: `server/benches/console.rs`). The rows are reused for
//! [`CACHE_MS`], so paging and sorting a large fleet read it once.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, age, badge, page, when};
use super::{ConsoleError, blocking};
use crate::admin_auth::Principal;
use crate::api::AppState;
use crate::objects::Kind;
use crate::store::{Approval, Device};

/// Rows per page unless asked otherwise (at most [`MAX_PER_PAGE`]).
pub const PER_PAGE: usize = 50;
/// Largest page.
pub const MAX_PER_PAGE: usize = 500;

/// The query string of the fleet page.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct FleetQuery {
    /// Name contains.
    pub q: String,
    /// Namespace, exactly.
    pub ns: String,
    /// `online`, `offline`, `unknown`.
    pub presence: String,
    /// `up`, `degraded`, `none`.
    pub phase: String,
    /// `ip`, `lorawan`, `sbd`.
    pub link: String,
    /// `k=v,k2=v2` (all must match) or `k` (present).
    pub label: String,
    /// Last seen: `1h`, `1d`, `7d` (within), `old1d`, `old7d` (longer ago), `never`.
    pub seen: String,
    /// `name`, `namespace`, `presence`, `phase`, `seen`.
    pub sort: String,
    /// `desc` for descending.
    pub dir: String,
    /// Page number from 1.
    pub page: usize,
    /// Rows per page.
    pub per: usize,
}

/// One device as the table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Device id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// `online`, `offline`, `unknown` (as the controller last wrote it).
    pub presence: String,
    /// `up`, `degraded`, or empty.
    pub phase: String,
    /// `ip`, `lorawan`, `sbd` (bound link kinds; `ip` without).
    pub link: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Last contact.
    pub last_seen_ms: Option<u64>,
    /// Waiting for approval.
    pub pending: bool,
}

/// Counts over the whole fleet (before filters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Devices (not decommissioned).
    pub total: usize,
    /// By presence.
    pub presence: BTreeMap<String, usize>,
    /// By phase (`none` when no heartbeat yet).
    pub phase: BTreeMap<String, usize>,
    /// Waiting for approval.
    pub pending: usize,
}

/// What one page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Whole-fleet counts.
    pub counts: Counts,
    /// Rows matching the filters.
    pub matching: usize,
    /// The page's rows.
    pub rows: Vec<Row>,
    /// The page shown (from 1) and the number of pages.
    pub page: usize,
    /// Pages.
    pub pages: usize,
}

fn label_matches(labels: &BTreeMap<String, String>, selector: &str) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels.get(k.trim()).is_some_and(|x| x == v.trim()),
            None => labels.contains_key(term),
        })
}

fn seen_matches(seen: &str, last: Option<u64>, now: u64) -> bool {
    const H: u64 = 3_600_000;
    let within = |ms: u64| last.is_some_and(|t| now.saturating_sub(t) <= ms);
    match seen {
        "1h" => within(H),
        "1d" => within(24 * H),
        "7d" => within(7 * 24 * H),
        "old1d" => last.is_some_and(|t| now.saturating_sub(t) > 24 * H),
        "old7d" => last.is_some_and(|t| now.saturating_sub(t) > 7 * 24 * H),
        "never" => last.is_none(),
        _ => true,
    }
}

/// Filter, count, sort and cut one page: pure, for tests and the bench.
/// Works on references; only the page's rows are copied.
pub fn select(all: &[Row], q: &FleetQuery, now_ms: u64) -> Selection {
    let (mut presence, mut phases) = (
        BTreeMap::<&str, usize>::new(),
        BTreeMap::<&str, usize>::new(),
    );
    let mut pending = 0;
    for r in all {
        *presence.entry(&r.presence).or_default() += 1;
        let phase = if r.phase.is_empty() { "none" } else { &r.phase };
        *phases.entry(phase).or_default() += 1;
        pending += usize::from(r.pending);
    }
    let owned = |m: BTreeMap<&str, usize>| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let counts = Counts {
        total: all.len(),
        presence: owned(presence),
        phase: owned(phases),
        pending,
    };
    let mut rows: Vec<&Row> = all
        .iter()
        .filter(|r| {
            (q.q.is_empty() || r.id.contains(q.q.trim()))
                && (q.ns.is_empty() || r.namespace == q.ns)
                && (q.presence.is_empty() || r.presence == q.presence)
                && (q.phase.is_empty()
                    || r.phase == q.phase
                    || (q.phase == "none" && r.phase.is_empty()))
                && (q.link.is_empty() || r.link == q.link)
                && label_matches(&r.labels, &q.label)
                && seen_matches(&q.seen, r.last_seen_ms, now_ms)
        })
        .collect();
    match q.sort.as_str() {
        "namespace" => rows.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id))),
        "presence" => rows.sort_by(|a, b| (&a.presence, &a.id).cmp(&(&b.presence, &b.id))),
        "phase" => rows.sort_by(|a, b| (&a.phase, &a.id).cmp(&(&b.phase, &b.id))),
        // Most recent first reads best; `dir=desc` turns it round.
        "seen" => rows.sort_by(|a, b| {
            b.last_seen_ms
                .cmp(&a.last_seen_ms)
                .then_with(|| a.id.cmp(&b.id))
        }),
        // The store reads devices by id: already in order.
        _ => {
            if !rows.is_sorted_by(|a, b| a.id <= b.id) {
                rows.sort_by(|a, b| a.id.cmp(&b.id));
            }
        }
    }
    if q.dir == "desc" {
        rows.reverse();
    }
    let per = if q.per == 0 {
        PER_PAGE
    } else {
        q.per.min(MAX_PER_PAGE)
    };
    let matching = rows.len();
    let pages = matching.div_ceil(per).max(1);
    let page = q.page.clamp(1, pages);
    let rows = rows
        .into_iter()
        .skip((page - 1) * per)
        .take(per)
        .cloned()
        .collect();
    Selection {
        counts,
        matching,
        rows,
        page,
        pages,
    }
}

/// The rows of every device that is not decommissioned.
pub fn rows(
    devices: Vec<Device>,
    presence: &BTreeMap<String, String>,
    links: &BTreeMap<String, String>,
) -> Vec<Row> {
    devices
        .into_iter()
        .filter(|d| d.decommissioned.is_none())
        .map(|d| {
            let id = d.id.as_str().to_owned();
            Row {
                presence: presence
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
                link: links.get(&id).cloned().unwrap_or_else(|| "ip".into()),
                namespace: d.namespace.as_str().to_owned(),
                phase: d.status.clone().unwrap_or_default(),
                labels: d.labels,
                last_seen_ms: d.last_seen_ms,
                pending: d.approval == Approval::Pending,
                id,
            }
        })
        .collect()
}

/// What the fleet page shows, read from the store and the objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Counts and the page's rows.
    pub selection: Selection,
    /// Every namespace with a device (the filter's choices).
    pub namespaces: Vec<String>,
    /// When the rows were read (server time, ms).
    pub read_at_ms: u64,
}

/// Every device's row, as read at `read_at_ms`.
#[derive(Debug)]
struct Fleet {
    read_at_ms: u64,
    rows: Vec<Row>,
    namespaces: Vec<String>,
    /// Link kinds were read for every device (the link filter needs them).
    all_links: bool,
}

/// How long the fleet's rows are reused: paging, sorting and filtering
/// within it read nothing again (at 100k devices reading takes ~1 s).
pub const CACHE_MS: u64 = 5_000;

/// The fleet's rows of the last read (see [`CACHE_MS`]).
#[derive(Debug, Default)]
pub struct FleetCache(std::sync::Mutex<Option<std::sync::Arc<Fleet>>>);

/// Read every device's row: two reads (devices, EdgeDevice objects), and
/// with `all_links` one more per device for its bound link kind.
fn read(
    store: &dyn crate::store::Store,
    objects: &dyn crate::objects::ObjectSource,
    all_links: bool,
    now: u64,
) -> Result<Fleet, crate::store::StoreError> {
    let presence: BTreeMap<String, String> = objects
        .list(Kind::EdgeDevice.as_str(), None)?
        .into_iter()
        .filter_map(|o| {
            let p = o.body.pointer("/status/presence")?.as_str()?.to_owned();
            Some((o.name, p))
        })
        .collect();
    let devices = store.devices()?;
    let namespaces: Vec<String> = devices
        .iter()
        .map(|d| d.namespace.as_str().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut links = BTreeMap::new();
    if all_links {
        for d in &devices {
            if let Some(kind) = link_kind(store, &d.id)? {
                links.insert(d.id.as_str().to_owned(), kind);
            }
        }
    }
    Ok(Fleet {
        read_at_ms: now,
        rows: rows(devices, &presence, &links),
        namespaces,
        all_links,
    })
}

/// Read (or reuse, within [`CACHE_MS`]) and select. Link kinds are read
/// for the page's rows only, unless the link filter needs every device's.
pub fn load(
    store: &dyn crate::store::Store,
    objects: &dyn crate::objects::ObjectSource,
    cache: &FleetCache,
    query: &FleetQuery,
    now: u64,
) -> Result<Loaded, crate::store::StoreError> {
    let all_links = !query.link.is_empty();
    let cached = cache
        .0
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|f| now.saturating_sub(f.read_at_ms) < CACHE_MS && (f.all_links || !all_links));
    let fleet = match cached {
        Some(f) => f,
        None => {
            let f = std::sync::Arc::new(read(store, objects, all_links, now)?);
            if let Ok(mut c) = cache.0.lock() {
                *c = Some(f.clone());
            }
            f
        }
    };
    let mut selection = select(&fleet.rows, query, now);
    if !fleet.all_links {
        for r in &mut selection.rows {
            if let Ok(id) = crate::device_id::DeviceId::parse(&r.id)
                && let Some(kind) = link_kind(store, &id)?
            {
                r.link = kind;
            }
        }
    }
    Ok(Loaded {
        selection,
        namespaces: fleet.namespaces.clone(),
        read_at_ms: fleet.read_at_ms,
    })
}

/// The whole page.
pub fn render(viewer: &Principal, q: &FleetQuery, loaded: &Loaded, now: u64) -> Markup {
    page(
        "Fleet",
        Some(viewer),
        Nav::Fleet,
        body(
            q,
            &loaded.selection,
            &loaded.namespaces,
            loaded.read_at_ms,
            now,
        ),
    )
}

/// `GET /ui/`.
pub async fn fleet(
    State(state): State<AppState>,
    Extension(viewer): Extension<Principal>,
    Query(q): Query<FleetQuery>,
) -> Result<Markup, ConsoleError> {
    let query = q.clone();
    let cache = state.fleet_cache.clone();
    let (loaded, now) = blocking(&state, move |store, objects, now| {
        Ok((load(store, objects, &cache, &query, now)?, now))
    })
    .await?;
    Ok(render(&viewer, &q, &loaded, now))
}

fn link_kind(
    store: &dyn crate::store::Store,
    id: &crate::device_id::DeviceId,
) -> Result<Option<String>, crate::store::StoreError> {
    Ok(store
        .device_links(id)?
        .first()
        .map(|b| b.address.kind().as_str().to_owned()))
}

fn href(q: &FleetQuery, change: impl FnOnce(&mut FleetQuery)) -> String {
    let mut q = q.clone();
    change(&mut q);
    let mut parts = Vec::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            parts.push(format!("{k}={}", urlencoding(v)));
        }
    };
    put("q", &q.q);
    put("ns", &q.ns);
    put("presence", &q.presence);
    put("phase", &q.phase);
    put("link", &q.link);
    put("label", &q.label);
    put("seen", &q.seen);
    put("sort", &q.sort);
    put("dir", &q.dir);
    if q.page > 1 {
        parts.push(format!("page={}", q.page));
    }
    if q.per != 0 && q.per != PER_PAGE {
        parts.push(format!("per={}", q.per));
    }
    format!("/ui/?{}", parts.join("&"))
}

/// Percent-encoding of a query value (RFC 3986 unreserved kept).
pub fn urlencoding(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn select_box(name: &str, current: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        select name=(name) {
            @for (value, label) in options {
                option value=(value) selected[*value == current] { (label) }
            }
        }
    }
}

fn sort_link(q: &FleetQuery, key: &str, title: &str) -> Markup {
    let on = q.sort == key || (q.sort.is_empty() && key == "name");
    let dir = if on && q.dir != "desc" { "desc" } else { "" };
    let url = href(q, |q| {
        q.sort = key.into();
        q.dir = dir.into();
        q.page = 1;
    });
    html! { a.sort href=(url) class=[on.then_some("on")] { (title) @if on { @if q.dir == "desc" { " ↑" } @else { " ↓" } } } }
}

fn body(q: &FleetQuery, s: &Selection, namespaces: &[String], read_at: u64, now: u64) -> Markup {
    let c = &s.counts;
    let count = |m: &BTreeMap<String, usize>, k: &str| m.get(k).copied().unwrap_or(0);
    let mut ns_options: Vec<(&str, &str)> = vec![("", "all namespaces")];
    ns_options.extend(namespaces.iter().map(|n| (n.as_str(), n.as_str())));
    html! {
        h1 { "Fleet" }
        section.counts #counts {
            a.count href=(href(q, |q| { q.presence.clear(); q.phase.clear(); q.page = 1; })) { b #count-total { (c.total) } " devices" }
            @for p in ["online", "offline", "unknown"] {
                a.count href=(href(q, |q| { q.presence = p.into(); q.page = 1; })) { b id={ "count-" (p) } { (count(&c.presence, p)) } " " (badge(p)) }
            }
            @for p in ["up", "degraded"] {
                a.count href=(href(q, |q| { q.phase = p.into(); q.page = 1; })) { b id={ "count-" (p) } { (count(&c.phase, p)) } " " (badge(p)) }
            }
            a.count href="/ui/approvals" { b #count-pending { (c.pending) } " pending approval" }
        }
        form.filters method="get" action="/ui/" {
            input type="search" name="q" value=(q.q) placeholder="name contains";
            (select_box("ns", &q.ns, &ns_options))
            (select_box("presence", &q.presence, &[("", "any presence"), ("online", "online"), ("offline", "offline"), ("unknown", "unknown")]))
            (select_box("phase", &q.phase, &[("", "any phase"), ("up", "up"), ("degraded", "degraded"), ("none", "no heartbeat")]))
            (select_box("link", &q.link, &[("", "any link"), ("ip", "IP (TLS/UDP)"), ("lorawan", "LoRaWAN"), ("sbd", "Iridium SBD")]))
            input type="text" name="label" value=(q.label) placeholder="label k=v,k2=v2";
            (select_box("seen", &q.seen, &[("", "seen any time"), ("1h", "seen within 1 h"), ("1d", "seen within 1 d"), ("7d", "seen within 7 d"), ("old1d", "not seen for 1 d"), ("old7d", "not seen for 7 d"), ("never", "never seen")]))
            input type="hidden" name="sort" value=(q.sort);
            input type="hidden" name="dir" value=(q.dir);
            button type="submit" { "Filter" }
            " " a href="/ui/" { "clear" }
        }
        p.muted #matching {
            (s.matching) " matching · page " (s.page) " of " (s.pages)
            @if now > read_at + 1000 { " · as of " (age(read_at, now)) }
        }
        table.fleet #fleet {
            thead { tr {
                th { (sort_link(q, "name", "Name")) }
                th { (sort_link(q, "namespace", "Namespace")) }
                th { (sort_link(q, "presence", "Presence")) }
                th { (sort_link(q, "phase", "Phase")) }
                th { "Link" }
                th { (sort_link(q, "seen", "Last seen")) }
                th { "Labels" }
            } }
            tbody {
                @for r in &s.rows {
                    tr data-device=(r.id) {
                        td { a href={ "/ui/devices/" (urlencoding(&r.id)) } { (r.id) } @if r.pending { " " (badge("pending")) } }
                        td { (r.namespace) }
                        td.presence { (badge(&r.presence)) }
                        td { @if r.phase.is_empty() { span.muted { "—" } } @else { (badge(&r.phase)) } }
                        td { (r.link) }
                        td { (when(r.last_seen_ms, now)) }
                        td.labels { @for (k, v) in &r.labels { span.label { (k) "=" (v) } " " } }
                    }
                }
            }
        }
        nav.pager {
            @if s.page > 1 { a #prev href=(href(q, |q| q.page = s.page - 1)) { "← previous" } }
            @if s.page < s.pages { a #next href=(href(q, |q| q.page = s.page + 1)) { "next →" } }
        }
    }
}

#[cfg(test)]
mod tests;
