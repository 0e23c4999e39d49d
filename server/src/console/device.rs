//! The device page (`GET /ui/devices/{id}`): identity and certificate
//! expiry, hardware, link facts, charts of battery and queue depth, the
//! event timeline (new events arrive live over SSE), a log tail with a
//! level filter, workloads and their state, and the configuration version.

use axum::Extension;
use axum::extract::{Path, Query, State};
use flotta_proto::payload::{Level, Payload};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::charts::{ChartSpec, downsample, svg};
use super::history::{History, history};
use super::layout::{Nav, age, badge, may_change, page, raw, time, when};
use super::{ConsoleError, blocking};
use crate::admin_auth::Principal;
use crate::api::AppState;
use crate::device_id::DeviceId;
use crate::objects::Kind;
use crate::store::{
    Approval, Device, DeviceEvent, FrameLinkStatus, LinkBinding, LinkDay, LorawanStatus, SbdStatus,
    utc_day,
};

/// Points per chart at most.
const BUCKETS: usize = 120;
/// Days of link statistics shown (today and the six before).
const LINK_DAYS: u64 = 6;
/// Events and log lines shown.
const EVENTS: usize = 50;
const LOGS: usize = 100;

/// `?range=1d|7d|30d&level=info|warn|error`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeviceQuery {
    /// `1d`, `7d` (default), `30d`: the charts' range.
    pub range: String,
    /// The log tail's lowest level.
    pub level: String,
}

/// What the device page shows.
pub struct Facts {
    device: Device,
    status: Value,
    config_version: Option<String>,
    links: Vec<LinkBinding>,
    frames: FrameLinkStatus,
    lorawan: Option<LorawanStatus>,
    sbd: Option<SbdStatus>,
    link_days: Vec<LinkDay>,
    events: Vec<DeviceEvent>,
    logs: Vec<DeviceEvent>,
    history: History,
}

fn range_ms(range: &str) -> (u64, &'static str) {
    match range {
        "1d" => (86_400_000, "1d"),
        "30d" => (30 * 86_400_000, "30d"),
        _ => (7 * 86_400_000, "7d"),
    }
}

fn level_of(word: &str) -> Option<Level> {
    match word {
        "info" => Some(Level::Info),
        "warn" => Some(Level::Warn),
        "error" => Some(Level::Error),
        _ => None,
    }
}

/// Read everything the page shows (`None`: no such device).
pub fn load(
    store: &dyn crate::store::Store,
    objects: &dyn crate::objects::ObjectSource,
    id: &DeviceId,
    q: &DeviceQuery,
    now: u64,
) -> Result<Option<Facts>, crate::store::StoreError> {
    let (span, _) = range_ms(&q.range);
    let min_level = level_of(&q.level);
    let Some(device) = store.device(id)? else {
        return Ok(None);
    };
    let status = objects
        .get(
            Kind::EdgeDevice.as_str(),
            device.namespace.as_str(),
            id.as_str(),
        )?
        .and_then(|o| o.body.get("status").cloned())
        .unwrap_or(Value::Null);
    let mut logs = Vec::new();
    let mut offset = 0;
    // The newest lines at or above the level, a bounded read.
    while logs.len() < LOGS && offset < 20_000 {
        let page = store.logs(id, 0, 1000, offset)?;
        offset += page.len();
        for r in &page {
            if let Ok(Payload::Log(l)) = Payload::decode(&r.payload)
                && min_level.is_none_or(|m| l.level >= m)
                && logs.len() < LOGS
            {
                logs.push(r.clone());
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    logs.reverse();
    Ok(Some(Facts {
        status,
        config_version: store.configuration(id)?.map(|c| c.version),
        links: store.device_links(id)?,
        frames: store.frame_link_status(id)?,
        lorawan: store.lorawan_status(id)?,
        sbd: store.sbd_status(id)?,
        link_days: store.link_days(id, &utc_day(now.saturating_sub(LINK_DAYS * 86_400_000)))?,
        events: store.events(id, EVENTS)?,
        logs,
        history: history(store, id, now.saturating_sub(span), now + 60_000)?,
        device,
    }))
}

/// The whole page.
pub fn render(viewer: &Principal, f: &Facts, q: &DeviceQuery, now: u64) -> Markup {
    let (span, range) = range_ms(&q.range);
    page(
        f.device.id.as_str(),
        Some(viewer),
        Nav::Fleet,
        body(f, viewer, range, &q.level, span, now),
    )
}

/// `GET /ui/devices/{id}`.
pub async fn device(
    State(state): State<AppState>,
    Extension(viewer): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<DeviceQuery>,
) -> Result<Markup, ConsoleError> {
    let id = DeviceId::parse(&id).map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
    let shown = id.to_string();
    let (facts, q, now) = blocking(&state, move |store, objects, now| {
        let facts = load(store, objects, &id, &q, now)?;
        Ok((facts, q, now))
    })
    .await?;
    let facts = facts.ok_or_else(|| ConsoleError::NotFound(format!("no device {shown}")))?;
    Ok(render(&viewer, &facts, &q, now))
}

fn identity(f: &Facts, viewer: &Principal, now: u64) -> Markup {
    let d = &f.device;
    html! {
        section.card #identity {
            h2 { "Identity" }
            dl {
                dt { "Namespace" } dd { (d.namespace) }
                dt { "Approval" } dd #approval {
                    @if d.approval == Approval::Pending {
                        (badge("pending"))
                        @if may_change(viewer) && d.decommissioned.is_none() {
                            form.inline method="post" action={ "/ui/devices/" (d.id) "/approve" } {
                                button #approve type="submit" { "Approve" }
                            }
                        }
                    } @else { "approved" }
                }
                dt { "Presence" } dd #presence { (badge(f.status.get("presence").and_then(Value::as_str).unwrap_or("unknown"))) }
                dt { "Phase" } dd { (d.status.as_deref().unwrap_or("—")) }
                dt { "Last seen" } dd #last-seen { (when(d.last_seen_ms, now)) }
                dt { "Enrolled" } dd { (time(d.enrolled_at_ms)) }
                dt { "Certificate" } dd #certificate {
                    @match (&d.cert_serial, d.cert_not_after_ms) {
                        (Some(serial), Some(after)) => {
                            code { (serial) } " · expires " (time(after)) " ("
                            @if after < now { span.bad { "expired " (age(after, now)) } }
                            @else if after - now < 7 * 86_400_000 { span.warn { (age(after, now)) } }
                            @else { (age(after, now)) }
                            ")"
                        }
                        _ => span.muted { "none issued" },
                    }
                }
                @if let Some(dec) = &d.decommissioned {
                    dt { "Decommissioned" } dd.bad { (time(dec.at_ms)) " by " (dec.by) }
                }
                dt { "Configuration" } dd #config-version { "version " (f.config_version.as_deref().unwrap_or("0")) }
                @if !d.labels.is_empty() {
                    dt { "Labels" } dd { @for (k, v) in &d.labels { span.label { (k) "=" (v) } " " } }
                }
            }
        }
    }
}

fn hardware(hw: Option<&Value>) -> Markup {
    let rows: Vec<(String, String)> = match hw.and_then(Value::as_object) {
        Some(o) => o
            .iter()
            .flat_map(|(k, v)| match v {
                Value::Object(inner) => inner
                    .iter()
                    .filter(|(_, v)| !v.is_object() && !v.is_array())
                    .map(|(k2, v)| (format!("{k} {k2}"), scalar(v)))
                    .collect::<Vec<_>>(),
                Value::Array(a) => vec![(k.clone(), format!("{} entries", a.len()))],
                v => vec![(k.clone(), scalar(v))],
            })
            .collect(),
        None => Vec::new(),
    };
    html! {
        section.card #hardware {
            h2 { "Hardware" }
            @if rows.is_empty() { p.muted { "not reported" } }
            @else { dl { @for (k, v) in &rows { dt { (k) } dd { (v) } } } }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn link(f: &Facts, now: u64) -> Markup {
    let d = &f.device;
    html! {
        section.card #link {
            h2 { "Link" }
            dl {
                dt { "Bound" } dd {
                    @if f.links.is_empty() { "IP (TLS / UDP)" }
                    @for b in &f.links { (b.address.kind().as_str()) " " code { (b.address.address()) } " " }
                }
                @if let Some(s) = d.contact_interval_seconds {
                    dt { "Uploads every" } dd { (human_seconds(u64::from(s))) " (" (86_400 / u64::from(s.max(1))) " windows/day)" }
                }
                @if let Some(l) = &f.frames.last_link { dt { "Last link" } dd { (l) } }
                @if !f.link_days.is_empty() {
                    @let days = f.link_days.iter().map(|d| d.day.as_str()).collect::<std::collections::BTreeSet<_>>().len().max(1) as u64;
                    @let sum = |g: fn(&LinkDay) -> u64| f.link_days.iter().map(g).sum::<u64>();
                    dt { "Per day" } dd #per-day {
                        (sum(|d| d.usage.windows) / days) " windows, "
                        (sum(|d| d.usage.frames) / days) " frames, "
                        (bytes(sum(|d| d.usage.bytes_up) / days)) " up, "
                        (bytes(sum(|d| d.usage.bytes_down) / days)) " down"
                        span.muted { " (mean of " (days) " day" @if days > 1 { "s" } ")" }
                    }
                    dt { "TLS" } dd #tls-handshakes {
                        (sum(|d| d.usage.tls_full)) " full, " (sum(|d| d.usage.tls_resumed)) " resumed handshakes"
                    }
                }
                @if f.frames.frames_stored > 0 || f.frames.key_id.is_some() {
                    dt { "Sealed frames" } dd { (f.frames.frames_stored) " stored, " (f.frames.frames_duplicate) " duplicates" }
                }
                @if let Some(l) = &f.lorawan {
                    dt { "LoRaWAN" } dd {
                        "DevEUI " code { (l.dev_eui) }
                        @if let Some(r) = l.rssi { " · RSSI " (r) " dBm" }
                        @if let Some(s) = l.snr { " · SNR " (s) " dB" }
                        @if let Some(dr) = l.last_dr { " · DR" (dr) }
                        @if let Some(t) = l.last_uplink_ms { " · " (age(t, now)) }
                        " · airtime today " (l.airtime_us / 1000) " ms, " (l.downlinks) " downlinks"
                    }
                }
                @if let Some(s) = &f.sbd {
                    dt { "Iridium SBD" } dd {
                        "IMEI " code { (s.imei) }
                        @if let Some(t) = s.last_mo_ms { " · last MO " (age(t, now)) }
                        @if let (Some(la), Some(lo)) = (s.latitude, s.longitude) { " · " (format!("{la:.3}, {lo:.3}")) @if let Some(c) = s.cep_km { " ±" (c) " km" } }
                        " · " (s.credits_used) " credits today"
                    }
                }
            }
        }
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..10_000 => format!("{n} B"),
        10_000..10_000_000 => format!("{} KiB", n / 1024),
        _ => format!("{} MiB", n / (1024 * 1024)),
    }
}

fn link_table(days: &[LinkDay]) -> Markup {
    html! {
        section.card.wide #link-days {
            h2 { "Traffic by day (UTC)" }
            @if days.is_empty() { p.muted { "nothing counted in the last 7 days" } }
            @else {
                table {
                    thead { tr { th { "Day" } th { "Link" } th { "Windows" } th { "TLS full / resumed" } th { "Frames" } th { "Up" } th { "Down" } } }
                    tbody { @for d in days.iter().rev() { tr {
                        td { (d.day) } td { (d.link) } td { (d.usage.windows) }
                        td { (d.usage.tls_full) " / " (d.usage.tls_resumed) }
                        td { (d.usage.frames) } td { (bytes(d.usage.bytes_up)) } td { (bytes(d.usage.bytes_down)) }
                    } } }
                }
            }
        }
    }
}

fn human_seconds(s: u64) -> String {
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

fn charts(h: &History, range: &str, span: u64, now: u64) -> Markup {
    let from = now.saturating_sub(span);
    let to = now + 60_000;
    let chart = |title: &str, unit: &str, samples: &[(u64, f64)], y: Option<(f64, f64)>| {
        let spec = ChartSpec {
            title,
            unit,
            from_ms: from,
            to_ms: to,
            y_range: y,
        };
        raw(svg(&spec, &downsample(samples, from, to, BUCKETS)))
    };
    html! {
        section.card.wide #charts {
            h2 { "History" }
            nav.ranges {
                @for r in ["1d", "7d", "30d"] {
                    a href={ "?range=" (r) } class=[(r == range).then_some("on")] { (r) }
                }
            }
            figure #battery-chart { figcaption { "Battery" } (chart("Battery", "%", &h.battery, Some((0.0, 100.0)))) }
            figure #queue-chart { figcaption { "Queue depth" } (chart("Queue depth", "records", &h.queue, None)) }
            figure #dropped-chart { figcaption { "Records dropped (since agent start)" } (chart("Dropped", "records", &h.dropped, None)) }
            figure #uptime-chart { figcaption { "Uptime (a fall is a reboot)" } (chart("Uptime", "h", &h.uptime, None)) }
            @if h.truncated { p.warn { "More samples than one page draws: the newest are missing; choose a shorter range." } }
        }
    }
}

fn events(f: &Facts, now: u64) -> Markup {
    let id = f.device.id.as_str();
    html! {
        section.card.wide {
            h2 { "Events" }
            ol.timeline #events data-stream={ "/apis/events/stream?device=" (super::fleet::urlencoding(id)) } {
                @for e in f.events.iter().rev() {
                    @if let Ok(Payload::Event(ev)) = Payload::decode(&e.payload) {
                        li class={ "ev l-" (ev.level.as_str()) } {
                            (when(Some(e.at_ms), now)) " " (badge(ev.level.as_str())) " "
                            b.reason { (ev.reason) } " " span.msg { (ev.message) }
                        }
                    }
                }
            }
            @if f.events.is_empty() { p.muted #no-events { "no events yet" } }
        }
    }
}

fn logs(f: &Facts, level: &str) -> Markup {
    html! {
        section.card.wide #logs {
            h2 { "Logs" }
            form method="get" {
                select name="level" {
                    @for (v, t) in [("", "all levels"), ("info", "info and above"), ("warn", "warn and above"), ("error", "error")] {
                        option value=(v) selected[v == level] { (t) }
                    }
                }
                button type="submit" { "Show" }
            }
            pre.logs {
                @for r in &f.logs {
                    @if let Ok(Payload::Log(l)) = Payload::decode(&r.payload) {
                        span class={ "l-" (l.level.as_str()) } { (time(r.at_ms)) " " (l.source) " " (l.level.as_str()) " " (l.message) "\n" }
                    }
                }
            }
            @if f.logs.is_empty() { p.muted { "no log lines" } }
        }
    }
}

fn workloads(status: &Value) -> Markup {
    let items = status
        .get("workloads")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        section.card #workloads {
            h2 { "Workloads" }
            @if items.is_empty() { p.muted { "none" } }
            @else {
                table { thead { tr { th { "Name" } th { "Phase" } } }
                    tbody { @for w in &items { tr {
                        td { (w.get("name").and_then(Value::as_str).unwrap_or("?")) }
                        td { (badge(w.get("phase").and_then(Value::as_str).unwrap_or("unknown"))) }
                    } } }
                }
            }
        }
    }
}

fn body(f: &Facts, viewer: &Principal, range: &str, level: &str, span: u64, now: u64) -> Markup {
    html! {
        p.crumbs { a href="/ui/" { "Fleet" } " / " (f.device.id) }
        h1 #device-name { (f.device.id) }
        div.grid {
            (identity(f, viewer, now))
            (link(f, now))
            (hardware(f.device.hardware.as_ref()))
            (workloads(&f.status))
        }
        (charts(&f.history, range, span, now))
        (link_table(&f.link_days))
        (events(f, now))
        (logs(f, level))
    }
}
