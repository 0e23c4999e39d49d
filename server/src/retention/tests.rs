//! The retention task: ingest stays responsive while a pass deletes a large
//! backlog on SQLite (longest batch latency measured and printed), and the
//! loop runs passes only while leading and stops on shutdown.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload};
use flotta_proto::record::RecordClass;

use super::{Retention, RetentionSettings};
use crate::clock::{ManualClock, from_unix_ms};
use crate::device_id::{DeviceId, Namespace};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::store::{Contact, NewRecord, SqliteStore, Store};

const DAY: u64 = 86_400_000;
const NOW: u64 = 100 * DAY;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn enrol(s: &dyn Store, d: &DeviceId) {
    s.enrol(d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
}

fn heartbeats(first: u64, n: u64) -> Vec<NewRecord> {
    let payload = Payload::Heartbeat(Heartbeat {
        status: DeviceStatus::Up,
        agent_version: "0.1.0".into(),
        uptime_seconds: first,
        queue_records: 60,
        queue_bytes: 6_000,
        dropped_records: [0; 3],
        damaged_bytes: 0,
        battery_percent: Some(80),
        workloads: vec![],
    })
    .encode();
    (first..first + n)
        .map(|seq| NewRecord {
            seq,
            at_ms: seq,
            class: RecordClass::Heartbeat,
            payload: payload.clone(),
        })
        .collect()
}

fn retention(store: Arc<dyn Store>, keep_days: u32, settings: RetentionSettings) -> Retention {
    Retention::new(
        store,
        Arc::new(ManualClock::new(from_unix_ms(NOW))),
        RetentionSettings {
            keep_days,
            ..settings
        },
        Metrics::shared(),
    )
}

/// Latencies (ms) of 60-heartbeat windows of one device stored back to
/// back until `done` is set (at least `min` of them).
fn ingest_until(s: &dyn Store, d: &DeviceId, done: &AtomicBool, min: usize) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut seq = 1;
    while !done.load(Ordering::Relaxed) || latencies.len() < min {
        let batch = heartbeats(seq, 60);
        seq += 60;
        let t = Instant::now();
        s.ingest_batch(d, &batch, None, Contact::at(NOW)).unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    latencies
}

fn summary(name: &str, mut l: Vec<f64>) -> f64 {
    l.sort_by(f64::total_cmp);
    let p = |q: f64| l[((l.len() - 1) as f64 * q) as usize];
    let max = l[l.len() - 1];
    println!(
        "{name}: {} windows, median {:.1} ms, p99 {:.1} ms, max {max:.1} ms",
        l.len(),
        p(0.5),
        p(0.99)
    );
    max
}

/// 20 devices with 10 000 records each received 40 days ago (200 000 rows),
/// named `prefix-NN`.
fn backlog(s: &dyn Store, prefix: &str) {
    for n in 0..20 {
        let d = id(&format!("{prefix}-{n:02}"));
        enrol(s, &d);
        for b in 0..10 {
            s.ingest_batch(
                &d,
                &heartbeats(1 + b * 1000, 1000),
                None,
                Contact::at(NOW - 40 * DAY),
            )
            .unwrap();
        }
    }
}

/// Run a pass of `r` while `live` stores windows back to back; the pass's
/// report and the longest window (ms).
fn pass_during_ingest(
    name: &str,
    s: &dyn Store,
    r: &Retention,
    live: &DeviceId,
) -> (super::PassReport, f64) {
    let done = AtomicBool::new(false);
    let (report, during) = std::thread::scope(|scope| {
        let ingest = scope.spawn(|| ingest_until(s, live, &done, 20));
        let report = r.pass(&AtomicBool::new(false)).unwrap();
        done.store(true, Ordering::Relaxed);
        (report, ingest.join().unwrap())
    });
    println!(
        "{name}: {} records in {} transactions, {:?} ({:.0} rows/s)",
        report.records,
        report.chunks,
        report.took,
        report.records as f64 / report.took.as_secs_f64()
    );
    let max = summary(&format!("ingest during the {name}"), during);
    (report, max)
}

/// A backlog of 200 000 old rows on a SQLite file; a device stores
/// 60-heartbeat windows back to back while a pass with the default chunks
/// and pauses deletes it. For comparison (printed only), the same backlog
/// deleted one transaction per device (10 000 rows each), no pauses.
#[test]
fn ingest_stays_responsive_during_a_large_pass() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("flotta.db")).unwrap());
    backlog(&*s, "dev-a");
    let live = id("dev-live");
    enrol(&*s, &live);
    let baseline = summary(
        "ingest alone",
        ingest_until(&*s, &live, &AtomicBool::new(true), 100),
    );
    let r = retention(s.clone(), 30, RetentionSettings::new(30));
    let (report, max) = pass_during_ingest("chunked pass", &*s, &r, &live);
    assert_eq!(report.records, 20 * 9_999, "each device's newest stays");
    assert!(report.chunks >= 200, "{report:?}");

    backlog(&*s, "dev-b");
    let whole = RetentionSettings {
        chunk_rows: 1_000_000,
        pause: Duration::ZERO,
        ..RetentionSettings::new(30)
    };
    let r = retention(s.clone(), 30, whole);
    let (report, whole_max) =
        pass_during_ingest("pass in one transaction per device", &*s, &r, &live);
    assert_eq!(report.records, 20 * 9_999);
    println!(
        "longest window: {baseline:.1} ms alone, {max:.1} ms beside chunks of 1000, \
         {whole_max:.1} ms beside 10 000-row transactions"
    );
    // One chunk of 1000 rows is a few ms; a second is far more than any
    // chunk and far less than the pass.
    assert!(
        max < 1_000.0,
        "longest window {max:.1} ms (alone: {baseline:.1} ms)"
    );
}

/// Leads when told.
#[derive(Debug, Default)]
struct Switch {
    leading: AtomicBool,
    asked: AtomicUsize,
}

impl Leadership for Switch {
    fn is_leader(&self) -> bool {
        self.asked.fetch_add(1, Ordering::Relaxed);
        self.leading.load(Ordering::Relaxed)
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_runs_while_leading_and_stops_on_shutdown() {
    let s: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let d = id("dev-loop");
    enrol(&*s, &d);
    s.ingest_batch(&d, &heartbeats(1, 10), None, Contact::at(NOW - 40 * DAY))
        .unwrap();
    let switch = Arc::new(Switch::default());
    let settings = RetentionSettings {
        interval: Duration::from_millis(10),
        first_pass_after: Duration::ZERO,
        pause: Duration::ZERO,
        ..RetentionSettings::new(30)
    };
    let r = retention(s.clone(), 30, settings).led_by(switch.clone());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(r.run_loop(rx));
    // Not leading: asked several times, nothing deleted.
    eventually("leadership asked", || {
        switch.asked.load(Ordering::Relaxed) >= 3
    })
    .await;
    assert_eq!(s.records(&d, None, 100).unwrap().len(), 10);
    switch.leading.store(true, Ordering::Relaxed);
    eventually("old records deleted", || {
        s.records(&d, None, 100).unwrap().len() == 1
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
}
