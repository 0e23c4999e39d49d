//! Load benchmark: N simulated devices send batches (one heartbeat plus a few
//! log records) over loopback with real mTLS to an in-process server, on a
//! fresh TLS connection per batch, as devices waking up once per heartbeat
//! period do. Prints sustained heartbeats/s and records/s, p50/p99 batch
//! latency, controller pass times (first and steady state), and the process RSS.
//!
//! `cargo bench -p flotta-server --bench load` runs the full load
//! (`FLOTTA_LOAD_DEVICES`, default 1000; `FLOTTA_LOAD_ROUNDS`, default 3;
//! `FLOTTA_LOAD_RECORDS` per batch, default 4; `FLOTTA_LOAD_THREADS`,
//! default 16). Without `--bench` (`cargo test --benches`) it runs a quick
//! smoke pass with 20 devices.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use flotta_proto::batch::{
    BATCH_CONTENT_TYPE, BATCH_FORMAT_VERSION, BatchRequest, BatchResponse, WireRecord, batch_path,
};
use flotta_proto::payload::{DeviceStatus, Heartbeat, Level, LogLine, Payload};
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::testing::{TestOptions, spawn};

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(seq: u64, payload: Payload) -> WireRecord {
    WireRecord {
        seq,
        at_ms: 1_750_000_000_000 + seq,
        class: payload.class(),
        payload: payload.encode(),
    }
}

fn batch(first_seq: u64, records: usize) -> BatchRequest {
    let mut out = Vec::with_capacity(records);
    for i in 0..records.saturating_sub(1) {
        out.push(record(
            first_seq + i as u64,
            Payload::Log(LogLine {
                source: "app".into(),
                level: Level::Info,
                message: format!("reading {i}: 21.5 C"),
            }),
        ));
    }
    out.push(record(
        first_seq + records.saturating_sub(1) as u64,
        Payload::Heartbeat(Heartbeat {
            status: DeviceStatus::Up,
            agent_version: "0.1.0".into(),
            uptime_seconds: first_seq,
            queue_records: 0,
            queue_bytes: 0,
            dropped_records: [0; 3],
            damaged_bytes: 0,
            battery_percent: None,
            workloads: vec![],
        }),
    ));
    BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: String::new(),
        records: out,
        frame_epoch: None,
        upload_interval_seconds: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let devices = if full {
        env_or("FLOTTA_LOAD_DEVICES", 1000)
    } else {
        20
    };
    let rounds = if full {
        env_or("FLOTTA_LOAD_ROUNDS", 3)
    } else {
        1
    };
    let records = env_or("FLOTTA_LOAD_RECORDS", 4).max(1);
    let threads = env_or("FLOTTA_LOAD_THREADS", 16).clamp(1, devices.max(1));
    println!(
        "load: {devices} devices, {rounds} rounds, {records} records per batch, {threads} client threads{}",
        if full {
            ""
        } else {
            " (quick mode; run with `cargo bench` for the full load)"
        }
    );
    let rss_start = common::rss_kib("self");
    let server = spawn(TestOptions::default()).unwrap();
    let base = format!("https://localhost:{}", server.api_addr.port());
    let ns = Namespace::parse("default").unwrap();
    let now = SystemTime::now();
    let provision = Instant::now();
    let agents: Vec<(String, ureq::Agent)> = (0..devices)
        .map(|i| {
            let name = format!("dev-{i:05}");
            let id = DeviceId::parse(&name).unwrap();
            server.store().enrol(&id, &ns, None, true, 0).unwrap();
            let cert = server
                .device_cert(
                    &name,
                    "default",
                    now - Duration::from_secs(3600),
                    now + Duration::from_secs(86_400),
                )
                .unwrap();
            (name, common::mtls_agent(&server.ca_pem, &cert))
        })
        .collect();
    println!(
        "provisioned {devices} devices in {:.1?}",
        provision.elapsed()
    );
    let pass = Instant::now();
    let report = flotta_server::controller::reconcile(
        server.store(),
        server.objects(),
        Default::default(),
        0,
    )
    .unwrap();
    println!(
        "controller first pass over {} devices (creates every object): {:.1?}",
        report.devices,
        pass.elapsed()
    );
    let pass = Instant::now();
    flotta_server::controller::reconcile(server.store(), server.objects(), Default::default(), 0)
        .unwrap();
    println!(
        "controller steady-state pass (nothing changed): {:.1?}",
        pass.elapsed()
    );
    let rss_idle = common::rss_kib("self");

    let latencies = Mutex::new(Vec::with_capacity(devices * rounds));
    let failures = Mutex::new(0usize);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (agents, latencies, failures, base) = (&agents, &latencies, &failures, &base);
            scope.spawn(move || {
                let mut mine = Vec::new();
                for round in 0..rounds {
                    for (name, agent) in agents.iter().skip(t).step_by(threads) {
                        let body = batch((round * records) as u64 + 1, records).encode();
                        let sent = Instant::now();
                        let r = agent
                            .post(format!("{base}{}", batch_path(name)))
                            .header("content-type", BATCH_CONTENT_TYPE)
                            .send(&body[..]);
                        let ok = r.ok().is_some_and(|mut r| {
                            r.status() == 200
                                && r.body_mut()
                                    .read_to_vec()
                                    .ok()
                                    .and_then(|b| BatchResponse::decode(&b).ok())
                                    .is_some_and(|b| {
                                        b.acked_through == Some(((round + 1) * records) as u64)
                                    })
                        });
                        mine.push(sent.elapsed());
                        if !ok {
                            *failures.lock().unwrap() += 1;
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = start.elapsed();
    let mut lat = latencies.into_inner().unwrap();
    lat.sort();
    let failures = failures.into_inner().unwrap();
    let batches = lat.len();
    let secs = elapsed.as_secs_f64();
    let rss_end = common::rss_kib("self");
    println!("batches: {batches} in {secs:.2} s, failures: {failures}");
    println!("heartbeats/s: {:.0}", batches as f64 / secs);
    println!("records/s:    {:.0}", (batches * records) as f64 / secs);
    println!(
        "latency p50: {:.1?}  p99: {:.1?}  max: {:.1?}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    let per_10k = |kib: u64| kib as f64 / 1024.0 * 10_000.0 / devices.max(1) as f64;
    println!(
        "RSS (server and load clients share this process): start {} MiB, after provisioning {} MiB, after load {} MiB; growth extrapolated to 10k devices {:.0} MiB (fixed overhead included: an upper bound)",
        rss_start / 1024,
        rss_idle / 1024,
        rss_end / 1024,
        per_10k(rss_end.saturating_sub(rss_start))
    );
    server.shutdown();
    assert_eq!(failures, 0, "some batches failed");
}
