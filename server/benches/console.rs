//! Operator console benchmark (issue #15): the time to build the fleet page
//! (read, filter, count, sort, render one page of 50 rows; and with the
//! rows of a read a few seconds old reused, as paging does) and a device
//! page (7 days of one-a-minute heartbeats charted) with N devices in a
//! SQLite store in memory (the work, not fsyncs), next to what showing the
//! fleet cost before the console: the admin API's EdgeDevice list with
//! the live status of every device (`flotta-server get edgedevices`).
//!
//! `cargo bench -p flotta-server --bench console` runs 10 000 devices
//! (`FLOTTA_CONSOLE_BENCH_DEVICES=10000,100000`); without `--bench`
//! (`cargo test --benches`) a quick smoke run with 200.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload};
use flotta_proto::record::RecordClass;
use serde_json::json;

use flotta_server::admin_auth::{AdminRole, Principal, Via};
use flotta_server::console::{device, fleet};
use flotta_server::controller::{self, Settings, reconcile, status};
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::store::{Contact, NewRecord, SqliteStore, StatusUpdate, Store};

const NOW: u64 = 1_750_000_000_000;
const MINUTE: u64 = 60_000;

fn name(i: usize) -> DeviceId {
    DeviceId::parse(&format!("dev-{i:06}")).unwrap()
}

fn seed(s: &SqliteStore, n: usize) {
    let ns = [
        Namespace::parse("default").unwrap(),
        Namespace::parse("lab").unwrap(),
    ];
    for i in 0..n {
        let id = name(i);
        s.enrol(&id, &ns[i % 2], None, true, NOW - 86_400_000)
            .unwrap();
        // A third of the fleet went quiet an hour ago or more.
        let seen = if i % 3 == 0 {
            NOW - (i as u64 % 48 + 1) * 3_600_000
        } else {
            NOW - i as u64 % 60_000
        };
        let update = StatusUpdate {
            status: if i % 11 == 0 { "degraded" } else { "up" }.into(),
            heartbeat: json!({"workloads": [{"name": "w", "phase": "running"}]}),
            hardware: None,
            seq: None,
        };
        s.ingest_batch(&id, &[], Some(&update), Contact::at(seen))
            .unwrap();
    }
}

/// A week of one heartbeat a minute for device 1.
fn history(s: &SqliteStore) -> usize {
    let id = name(1);
    let week = 7 * 24 * 60;
    let records: Vec<NewRecord> = (0..week)
        .map(|m| {
            let hb = Heartbeat {
                status: DeviceStatus::Up,
                agent_version: "bench".into(),
                uptime_seconds: m * 60,
                queue_records: m % 97,
                queue_bytes: (m % 97) * 300,
                dropped_records: [0, 0, 0],
                damaged_bytes: 0,
                battery_percent: Some((100 - (m / 120) % 100) as u8),
                workloads: vec![],
            };
            NewRecord {
                seq: m + 1,
                at_ms: NOW - (week - m) * MINUTE,
                class: RecordClass::Heartbeat,
                payload: Payload::Heartbeat(hb).encode(),
            }
        })
        .collect();
    for chunk in records.chunks(1000) {
        s.ingest_batch(&id, chunk, None, Contact::at(NOW)).unwrap();
    }
    records.len()
}

/// The previous way to see the fleet: every EdgeDevice with its live status.
fn previous_list(s: &SqliteStore, settings: Settings) -> usize {
    let mut bytes = 0;
    for o in flotta_server::objects::ObjectSource::list(s, "EdgeDevice", None).unwrap() {
        let id = DeviceId::parse(&o.name).unwrap();
        let d = s.device(&id).unwrap().unwrap();
        let p = controller::device_presence(s, settings, &d, NOW).unwrap();
        let mut body = o.body;
        let st = body
            .as_object_mut()
            .unwrap()
            .entry("status")
            .or_insert(json!({}));
        status::overlay_live(st, &d, p);
        status::overlay_link(st, &s.frame_link_status(&id).unwrap());
        status::overlay_sbd(
            st,
            &s.device_links(&id).unwrap(),
            s.sbd_status(&id).unwrap().as_ref(),
        );
        status::overlay_lorawan(st, &[], s.lorawan_status(&id).unwrap().as_ref());
        bytes += body.to_string().len();
    }
    bytes
}

fn measure(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        bytes = f();
        times.push(start.elapsed());
    }
    times.sort();
    (
        times[runs / 2],
        times[(runs * 95 / 100).min(runs - 1)],
        bytes,
    )
}

fn run(n: usize, runs: usize) {
    let s = SqliteStore::in_memory().unwrap();
    let settings = Settings::default();
    let setup = Instant::now();
    seed(&s, n);
    let records = history(&s);
    reconcile(&s, &s, settings, NOW).unwrap();
    // Labels after the pass (it writes the EdgeDevice's labels to the device).
    for i in 0..n {
        let mut labels = BTreeMap::new();
        labels.insert("site".to_owned(), format!("s{}", i % 20));
        s.set_labels(&name(i), &labels).unwrap();
    }
    eprintln!(
        "{n} devices (+{records} heartbeats of one) set up in {:.1?}",
        setup.elapsed()
    );
    let objects = &s;
    let viewer = Principal {
        name: "bench".into(),
        role: AdminRole::Admin,
        via: Via::Local,
    };
    // A cache of its own each time: the fleet is read for every page.
    let page = |q: fleet::FleetQuery| {
        let cache = fleet::FleetCache::default();
        let loaded = fleet::load(&s, objects, &cache, &q, NOW).unwrap();
        fleet::render(&viewer, &q, &loaded, NOW).into_string().len()
    };
    // One cache: the rows of the first read are reused (paging, sorting).
    let warm = fleet::FleetCache::default();
    let reused = |q: fleet::FleetQuery| {
        let loaded = fleet::load(&s, objects, &warm, &q, NOW).unwrap();
        fleet::render(&viewer, &q, &loaded, NOW).into_string().len()
    };
    let q = |f: &dyn Fn(&mut fleet::FleetQuery)| {
        let mut q = fleet::FleetQuery::default();
        f(&mut q);
        q
    };
    let mut rows: Vec<(String, (Duration, Duration, usize))> = vec![
        (
            "fleet page 1 (by name)".into(),
            measure(runs, || page(q(&|_| {}))),
        ),
        (
            "fleet: offline, by last seen".into(),
            measure(runs, || {
                page(q(&|q| {
                    q.presence = "offline".into();
                    q.sort = "seen".into();
                }))
            }),
        ),
        (
            "fleet: label site=s7, lab namespace".into(),
            measure(runs, || {
                page(q(&|q| {
                    q.label = "site=s7".into();
                    q.ns = "lab".into();
                }))
            }),
        ),
        (
            "fleet: page 100".into(),
            measure(runs, || page(q(&|q| q.page = 100))),
        ),
        (
            "fleet: name contains 0042".into(),
            measure(runs, || page(q(&|q| q.q = "0042".into()))),
        ),
        (
            "fleet: by last seen, rows reused".into(),
            measure(runs, || reused(q(&|q| q.sort = "seen".into()))),
        ),
        (
            "fleet: page 100, rows reused".into(),
            measure(runs, || reused(q(&|q| q.page = 100))),
        ),
        (
            "device page, 7 days charted".into(),
            measure(runs, || {
                let dq = device::DeviceQuery::default();
                let f = device::load(&s, objects, &name(1), &dq, NOW)
                    .unwrap()
                    .unwrap();
                device::render(&viewer, &f, &dq, NOW).into_string().len()
            }),
        ),
    ];
    rows.push((
        "previous: EdgeDevice list, live status".into(),
        measure(runs.min(5), || previous_list(&s, settings)),
    ));
    println!("\n{n} devices (SQLite in memory), {runs} runs each");
    println!(
        "{:<40} {:>10} {:>10} {:>12}",
        "page", "median", "p95", "bytes"
    );
    for (label, (median, p95, bytes)) in rows {
        println!(
            "{label:<40} {:>8.1}ms {:>8.1}ms {bytes:>12}",
            median.as_secs_f64() * 1000.0,
            p95.as_secs_f64() * 1000.0
        );
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (sizes, runs): (Vec<usize>, usize) = if bench {
        (
            std::env::var("FLOTTA_CONSOLE_BENCH_DEVICES")
                .unwrap_or_else(|_| "10000".into())
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
            20,
        )
    } else {
        (vec![200], 2)
    };
    for n in sizes {
        run(n, runs);
    }
}
