//! Controller pass benchmark (issue #14): a SQLite store (in memory: the
//! pass's CPU is measured, not fsyncs) with N enrolled, approved, online
//! devices; the time of a full pass over every device (what every pass cost
//! before the incremental controller) next to incremental passes after 0,
//! 10 and 1000 changed devices, and after 1000 heartbeats that only move
//! "last seen".
//!
//! `cargo bench -p flotta-server --bench controller` runs 10 000 and
//! 100 000 devices (`FLOTTA_CONTROLLER_BENCH_DEVICES=10000,100000`); without
//! `--bench` (`cargo test --benches`) a quick smoke run with 200.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;

use flotta_server::controller::incremental::Tracker;
use flotta_server::controller::{Report, Settings, reconcile};
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::store::{Contact, SqliteStore, StatusUpdate, Store};

const T0: u64 = 1_750_000_000_000;

fn name(i: usize) -> DeviceId {
    DeviceId::parse(&format!("dev-{i:06}")).unwrap()
}

fn beat(store: &dyn Store, i: usize, phase: &str, at: u64) {
    let update = StatusUpdate {
        status: "up".into(),
        heartbeat: json!({"workloads": [{"name": "w", "phase": phase}]}),
        hardware: None,
        seq: None,
    };
    store
        .ingest_batch(&name(i), &[], Some(&update), Contact::at(at))
        .unwrap();
}

fn timed(f: impl FnOnce() -> Report) -> (Duration, Report) {
    let start = Instant::now();
    let r = f();
    (start.elapsed(), r)
}

fn run(n: usize) {
    let s = SqliteStore::in_memory().unwrap();
    let ns = Namespace::parse("default").unwrap();
    let settings = Settings::default();
    let setup = Instant::now();
    for i in 0..n {
        s.enrol(&name(i), &ns, None, true, T0).unwrap();
        beat(&s, i, "running", T0);
    }
    reconcile(&s, &s, settings, T0).unwrap();
    let mut tracker = Tracker::new(Duration::from_secs(3600));
    tracker.pass(&s, &s, settings, T0).unwrap();
    tracker.pass(&s, &s, settings, T0).unwrap();
    eprintln!("{n} devices set up in {:.1?}", setup.elapsed());
    let (full, full_report) = timed(|| reconcile(&s, &s, settings, T0 + 1000).unwrap());
    let mut rows = vec![("full pass (previous design)", full, full_report.looked_at)];
    let mut now = T0 + 2000;
    for changed in [0usize, 10, 1000] {
        // A phase no earlier round used: every one of them is a change.
        let phase = format!("phase-{changed}");
        for i in 0..changed.min(n) {
            beat(&s, i, &phase, now);
        }
        let (took, r) = timed(|| tracker.pass(&s, &s, settings, now).unwrap());
        assert!(!r.full);
        let label = match changed {
            0 => "incremental, 0 changed",
            10 => "incremental, 10 changed",
            _ => "incremental, 1000 changed",
        };
        rows.push((label, took, r.looked_at));
        now += 1000;
    }
    for i in 0..1000.min(n) {
        s.ingest_batch(&name(i), &[], None, Contact::at(now))
            .unwrap();
    }
    let (took, r) = timed(|| tracker.pass(&s, &s, settings, now).unwrap());
    rows.push(("incremental, 1000 heartbeats only", took, r.looked_at));
    println!("\n{n} devices (SQLite in memory)");
    println!("{:<36} {:>12} {:>12}", "pass", "time", "looked at");
    for (label, took, looked_at) in rows {
        println!(
            "{label:<36} {:>10.2}ms {looked_at:>12}",
            took.as_secs_f64() * 1000.0
        );
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if bench {
        std::env::var("FLOTTA_CONTROLLER_BENCH_DEVICES")
            .unwrap_or_else(|_| "10000,100000".into())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    } else {
        vec![200]
    };
    for n in sizes {
        run(n);
    }
}
