//! Output of `get` and `describe`: kubectl-like tables, YAML and JSON.
//! Pure functions of the objects and the current time.

use std::str::FromStr;

use serde_json::{Value, json};

use crate::objects::Kind;

/// `-o` of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Columns (the default).
    #[default]
    Table,
    /// Columns and more of them (`-o wide`): for EdgeDevices the link and
    /// sealed-frame context.
    Wide,
    /// YAML, re-appliable with `apply -f`.
    Yaml,
    /// JSON, re-appliable with `apply -f`.
    Json,
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "wide" => Ok(OutputFormat::Wide),
            "yaml" => Ok(OutputFormat::Yaml),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!(
                "unknown output format \"{other}\" (yaml, json, table or wide)"
            )),
        }
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `12s`, `5m`, `3h`, `2d` between `rfc3339` and `now_ms`; `<never>` when absent.
pub fn human_age(rfc3339: &str, now_ms: u64) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return "<never>".into();
    };
    let then_ms = u64::try_from(t.unix_timestamp())
        .unwrap_or(0)
        .saturating_mul(1000);
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..120 => format!("{secs}s"),
        120..7200 => format!("{}m", secs / 60),
        7200..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn row(kind: Kind, o: &Value, workloads: &[Value], now_ms: u64) -> Vec<String> {
    let age = human_age(s(o, "/metadata/creationTimestamp"), now_ms);
    let name = s(o, "/metadata/name").to_owned();
    match kind {
        Kind::EdgeDevice => {
            let workloads = format!(
                "{}/{}",
                super::assigned::assigned(o, workloads),
                super::assigned::running(o)
            );
            let seen = s(o, "/status/lastSeenTime");
            let phase = s(o, "/status/phase");
            vec![
                name,
                or_dash(s(o, "/status/presence")),
                or_dash(phase),
                if seen.is_empty() {
                    "<never>".into()
                } else {
                    human_age(seen, now_ms)
                },
                workloads,
                or_dash(s(o, "/metadata/labels/flotta~1member-of")),
                age,
            ]
        }
        Kind::EdgeDeviceSignedRequest => vec![
            name,
            s(o, "/spec/targetNamespace").to_owned(),
            o.pointer("/spec/approved")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            or_dash(s(o, "/status/phase")),
            age,
        ],
        Kind::EdgeDeviceSet => {
            let period = o
                .pointer("/spec/heartbeat/periodSeconds")
                .map_or_else(|| "-".to_owned(), Value::to_string);
            vec![name, period, age]
        }
        Kind::EdgeWorkload => {
            let target = match o.pointer("/spec/device").and_then(Value::as_str) {
                Some(d) => format!("device={d}"),
                None => o
                    .pointer("/spec/deviceSelector")
                    .map_or_else(|| "-".into(), |sel| format!("selector={sel}")),
            };
            vec![name, s(o, "/spec/type").to_owned(), target, age]
        }
        Kind::ConfigMap => {
            let keys = |k: &str| o.get(k).and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, (keys("data") + keys("binaryData")).to_string(), age]
        }
        Kind::Secret => {
            let keys = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, s(o, "/type").to_owned(), keys.to_string(), age]
        }
    }
}

fn or_dash(v: &str) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.to_owned()
    }
}

fn headers(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::EdgeDevice => &[
            "NAME",
            "PRESENCE",
            "PHASE",
            "LAST SEEN",
            "WORKLOADS",
            "DEVICE SET",
            "AGE",
        ],
        Kind::EdgeDeviceSignedRequest => &["NAME", "TARGET NAMESPACE", "APPROVED", "STATUS", "AGE"],
        Kind::EdgeDeviceSet => &["NAME", "HEARTBEAT SECONDS", "AGE"],
        Kind::EdgeWorkload => &["NAME", "TYPE", "TARGET", "AGE"],
        Kind::ConfigMap => &["NAME", "DATA", "AGE"],
        Kind::Secret => &["NAME", "TYPE", "DATA", "AGE"],
    }
}

/// The objects as an aligned table; with a NAMESPACE column when
/// `with_namespace`. `workloads` (EdgeWorkload objects) make the WORKLOADS
/// column of EdgeDevices: assigned/running.
pub fn table(
    kind: Kind,
    items: &[Value],
    workloads: &[Value],
    with_namespace: bool,
    now_ms: u64,
) -> String {
    table_with(kind, items, workloads, with_namespace, false, now_ms)
}

/// Extra columns of `-o wide` for EdgeDevices.
const WIDE_DEVICE_HEADERS: [&str; 4] = ["LINK", "FRAME KEY", "EPOCH", "FRAMES"];

fn wide_device_row(o: &Value) -> Vec<String> {
    let n = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_i64)
            .map_or_else(|| "-".to_owned(), |v| v.to_string())
    };
    vec![
        or_dash(s(o, "/status/link/lastLink")),
        or_dash(s(o, "/status/link/frameKeyId")),
        n("/status/link/frameEpoch"),
        n("/status/link/framesStored"),
    ]
}

/// [`table`], with the extra columns of `-o wide` when `wide`.
pub fn table_with(
    kind: Kind,
    items: &[Value],
    workloads: &[Value],
    with_namespace: bool,
    wide: bool,
    now_ms: u64,
) -> String {
    let wide = wide && kind == Kind::EdgeDevice;
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(items.len() + 1);
    let mut head: Vec<String> = headers(kind).iter().map(|h| (*h).to_owned()).collect();
    if wide {
        head.extend(WIDE_DEVICE_HEADERS.iter().map(|h| (*h).to_owned()));
    }
    if with_namespace {
        head.insert(0, "NAMESPACE".into());
    }
    rows.push(head);
    for o in items {
        let mut r = row(kind, o, workloads, now_ms);
        if wide {
            r.extend(wide_device_row(o));
        }
        if with_namespace {
            r.insert(0, s(o, "/metadata/namespace").to_owned());
        }
        rows.push(r);
    }
    aligned(&rows, "")
}

/// Rows as columns padded to their widest cell, three spaces apart, each
/// line starting with `indent`.
pub(super) fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[i]))
            .collect();
        out.push_str(indent);
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// One object as YAML or JSON.
pub fn format_object(o: &Value, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(o).unwrap_or_default()),
        _ => serde_norway::to_string(o).unwrap_or_default(),
    }
}

/// Several objects as a `List` (which `apply -f` accepts back).
pub fn format_list(items: &[Value], format: OutputFormat) -> String {
    format_object(
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
        format,
    )
}

/// `describe`: a header of the key facts, then spec and status as YAML.
pub fn describe(kind: Kind, o: &Value, now_ms: u64) -> String {
    let mut out = format!(
        "Name:         {}\nNamespace:    {}\nKind:         {}\n",
        s(o, "/metadata/name"),
        s(o, "/metadata/namespace"),
        kind
    );
    let labels = o.pointer("/metadata/labels").and_then(Value::as_object);
    out.push_str("Labels:");
    match labels {
        Some(l) if !l.is_empty() => {
            for (i, (k, v)) in l.iter().enumerate() {
                let pad = if i == 0 { "       " } else { "              " };
                out.push_str(&format!("{pad}{k}={}\n", v.as_str().unwrap_or("")));
            }
        }
        _ => out.push_str("       <none>\n"),
    }
    out.push_str(&format!(
        "Created:      {} ago\n",
        human_age(s(o, "/metadata/creationTimestamp"), now_ms)
    ));
    if kind == Kind::EdgeDevice {
        let seen = s(o, "/status/lastSeenTime");
        out.push_str(&format!(
            "Presence:     {}\nLast seen:    {}\n",
            or_dash(s(o, "/status/presence")),
            if seen.is_empty() {
                "<never>".into()
            } else {
                format!("{seen} ({} ago)", human_age(seen, now_ms))
            }
        ));
        if let Some(secs) = o
            .pointer("/status/uploadIntervalSeconds")
            .and_then(Value::as_u64)
        {
            out.push_str(&format!("Uploads every: {secs} s\n"));
        }
        out.push_str(&describe_link(o));
        out.push_str(&describe_workloads(o));
    }
    for section in ["spec", "status"] {
        if let Some(v) = o.get(section) {
            let title = if section == "spec" { "Spec" } else { "Status" };
            out.push_str(&format!("{title}:\n"));
            for line in serde_norway::to_string(v).unwrap_or_default().lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The `Workloads:` lines of `describe edgedevice`: each workload the
/// device reported, with its phase.
fn describe_workloads(o: &Value) -> String {
    let list: Vec<&Value> = o
        .pointer("/status/workloads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if list.is_empty() {
        return "Workloads:    <none>\n".into();
    }
    let mut out = String::from("Workloads:\n");
    for w in list {
        out.push_str(&format!(
            "  {:<30} {}\n",
            s(w, "/name"),
            or_dash(s(w, "/phase"))
        ));
    }
    out
}

/// The `Link:` and `Frames:` lines of `describe edgedevice`: the link the
/// device last used, its sealed-frame context and counters.
fn describe_link(o: &Value) -> String {
    let Some(link) = o.pointer("/status/link") else {
        return "Link:         <none>\n".into();
    };
    let n = |k: &str| {
        link.get(k)
            .and_then(Value::as_i64)
            .map_or_else(|| "-".to_owned(), |v| v.to_string())
    };
    let mut out = format!("Link:         {}", or_dash(s(link, "/lastLink")));
    if let Some(key) = link.get("frameKeyId").and_then(Value::as_str) {
        out.push_str(&format!(" (frame key {key}, epoch {})", n("frameEpoch")));
    }
    out.push('\n');
    if link.get("framesStored").is_some() {
        out.push_str(&format!(
            "Frames:       {} stored, {} duplicate; uplink counter {}, downlink counter {}\n",
            n("framesStored"),
            n("framesDuplicate"),
            n("uplinkCounter"),
            n("downlinkCounter")
        ));
    }
    if let Some(sbd) = link.get("sbd") {
        out.push_str(&describe_sbd(sbd));
    }
    if let Some(lora) = link.get("lorawan") {
        out.push_str(&describe_lorawan(lora));
    }
    out
}

/// The `LoRaWAN:` line of `describe edgedevice`: bound DevEUI, the last
/// uplink's RSSI/SNR, data rate and FCnt, uplink airtime and downlinks today.
fn describe_lorawan(lora: &Value) -> String {
    let v = |k: &str| {
        lora.get(k).filter(|v| !v.is_null()).map_or_else(
            || "-".to_owned(),
            |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        )
    };
    let airtime = lora
        .get("airtimeMs")
        .and_then(Value::as_f64)
        .map_or_else(|| "-".to_owned(), |ms| format!("{:.1} s", ms / 1000.0));
    format!(
        "LoRaWAN:      DevEUI {}, RSSI {} dBm, SNR {} dB, DR{}, FCnt {}; {} airtime, {} downlinks on {}\n",
        v("devEui"),
        v("rssi"),
        v("snr"),
        v("lastDr"),
        v("lastFCnt"),
        airtime,
        v("downlinks"),
        v("airtimeDay")
    )
}

/// The `SBD:` line of `describe edgedevice`: bound IMEI, last MOMSN,
/// Iridium's position estimate, credits used today.
fn describe_sbd(sbd: &Value) -> String {
    let v = |k: &str| {
        sbd.get(k).filter(|v| !v.is_null()).map_or_else(
            || "-".to_owned(),
            |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        )
    };
    format!(
        "SBD:          IMEI {}, last MOMSN {}, at {},{} (CEP {} km), {} credits on {}\n",
        v("imei"),
        v("lastMomsn"),
        v("latitude"),
        v("longitude"),
        v("cepKm"),
        v("creditsUsed"),
        v("creditsDay")
    )
}

/// The `Events:` section of `describe edgedevice` (as kubectl prints it):
/// type, reason, age and message of each event, oldest first.
pub fn describe_events(events: &[Value], now_ms: u64) -> String {
    if events.is_empty() {
        return "Events:       <none>\n".into();
    }
    let mut rows = vec![vec![
        "TYPE".to_owned(),
        "REASON".into(),
        "AGE".into(),
        "MESSAGE".into(),
    ]];
    for e in events {
        rows.push(vec![
            s(e, "/type").to_owned(),
            s(e, "/reason").to_owned(),
            human_age(s(e, "/time"), now_ms),
            s(e, "/message").to_owned(),
        ]);
    }
    format!("Events:\n{}", aligned(&rows, "  "))
}
