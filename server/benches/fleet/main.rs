//! Fleet-scale benchmark: 10k / 50k / 100k devices, each uploading an hourly
//! window of 60 heartbeats over mutual TLS, against the real `flotta-server`
//! binary (a process of its own, so its RSS is the server's alone) on SQLite
//! and on PostgreSQL. Prints numbers; asserts only that nothing failed.
//!
//! Per store and fleet size:
//! 1. seed: the CA (`flotta-server init`), then every device enrolled,
//!    approved and given a certificate through the store library;
//! 2. the server starts (its first controller pass creates every EdgeDevice);
//! 3. first contact: every device uploads one window (full TLS handshakes);
//! 4. the hour: every device uploads its next window on a resumed session,
//!    as fast as the client threads go (sustained records/s, latency under
//!    saturation);
//! 5. paced: windows at the fleet's real rate (devices / 3600 per second)
//!    for `FLOTTA_FLEET_PACED_SECONDS` (latency at the goal's load);
//! 6. the server's RSS against an empty server's, the store's growth per
//!    window (× 24 = per device-day), and the controller pass over the
//!    fleet (first and steady state) run in this process on the same store
//!    once the server has stopped.
//!
//! `cargo bench -p flotta-server --bench fleet` runs the full benchmark
//! (`FLOTTA_FLEET_DEVICES`, default `10000,50000,100000`;
//! `FLOTTA_FLEET_STORES`, default `sqlite,postgres`; `FLOTTA_FLEET_THREADS`,
//! default 4; `FLOTTA_FLEET_PACED_SECONDS`, default 20;
//! `FLOTTA_FLEET_CONTROLLER=0` skips the controller passes, which a full
//! pass makes long at 100k devices). Without `--bench`
//! (`cargo test --benches`) it runs a quick pass with 40 devices per store.
//!
//! **Kubernetes mode**: `FLOTTA_FLEET_OBJECTS=kubernetes cargo bench -p
//! flotta-server --bench fleet` keeps the objects as CRDs in a real
//! Kubernetes API server (etcd + `crdtestserver`, started per fleet size by
//! `tests/src/kube.rs`; built by `cargo xtask kube-crd-server`, etcd from
//! Debian's `etcd-server`: a missing one fails the run, naming it). The
//! stores default to `postgres` there. It measures the API requests the
//! server makes (`flotta_kubernetes_requests_total`, scraped at each phase's
//! end: per minute by verb, and the status writes still queued):
//! - `objects`: from the server's start until its controller created every
//!   device's EdgeDeviceSignedRequest and EdgeDevice and wrote their
//!   statuses (time, creates/s), then checked against the cluster's count;
//! - `first contact`, `resumed hour`: as above (presence flips to online);
//! - `settle`: no upload for `FLOTTA_FLEET_KUBE_SETTLE_SECONDS` (default
//!   240: beyond 3 missed 60-s heartbeats and a controller interval), then
//!   until no status write is queued (devices that read offline now flip);
//! - `paced warm-up` (the first 240 s of the paced phase) and `paced
//!   steady`: the steady state, devices / 3600 windows per second for
//!   `FLOTTA_FLEET_PACED_SECONDS` (default 540 in this mode), each device
//!   uploading after an hour's silence.
//!
//! `FLOTTA_FLEET_KUBE_STATUS_RATE` sets `kubernetes_status_writes_per_second`
//! (default 20, the server's). The in-process controller passes are skipped
//! (the objects are in the cluster). Windows report the devices' upload
//! interval (3600 s; batch format 3), which presence counts;
//! `FLOTTA_FLEET_REPORT_INTERVAL=0` leaves it out, as an agent before format
//! 3 did: presence then reads a device offline ~180 s after its window (3
//! missed 60-s heartbeats), one status write per flip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod kube_phases;
mod report;
mod seed;
mod server;
mod windows;

use std::time::{Duration, Instant};

use report::Row;

/// Heartbeats in one upload window (an hour at 60-s heartbeats).
pub(crate) const WINDOW_HEARTBEATS: usize = 60;

/// How often a device uploads a window, in seconds, as its windows report
/// it (`BatchRequest::upload_interval_seconds`; not with
/// `FLOTTA_FLEET_REPORT_INTERVAL=0`).
pub(crate) const UPLOAD_INTERVAL_SECONDS: u32 = 3600;

/// How long the paced phase's Kubernetes requests are counted apart before
/// the steady state: beyond 3 missed 60-s heartbeats and a controller
/// interval, so the devices that uploaded in it reach their next presence.
const KUBE_WARM_UP: Duration = Duration::from_secs(240);

fn env_list(key: &str, default: &str) -> Vec<String> {
    std::env::var(key)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if full {
        env_list("FLOTTA_FLEET_DEVICES", "10000,50000,100000")
            .iter()
            .map(|s| s.parse().expect("FLOTTA_FLEET_DEVICES: numbers"))
            .collect()
    } else {
        vec![40]
    };
    let objects = cluster::Objects::from_env();
    let kube = objects == cluster::Objects::Kubernetes;
    let stores = env_list(
        "FLOTTA_FLEET_STORES",
        if kube { "postgres" } else { "sqlite,postgres" },
    );
    let threads = env_num("FLOTTA_FLEET_THREADS", 4).max(1) as usize;
    let paced = Duration::from_secs(if full {
        env_num("FLOTTA_FLEET_PACED_SECONDS", if kube { 540 } else { 20 })
    } else {
        2
    });
    let settle = Duration::from_secs(if full {
        env_num("FLOTTA_FLEET_KUBE_SETTLE_SECONDS", KUBE_WARM_UP.as_secs())
    } else {
        2
    });
    println!(
        "fleet: {sizes:?} devices on {stores:?} (objects {objects:?}), {threads} client threads, windows of {WINDOW_HEARTBEATS} heartbeats every {UPLOAD_INTERVAL_SECONDS} s{}",
        if full {
            ""
        } else {
            " (quick mode; `cargo bench -p flotta-server --bench fleet` for the full run)"
        }
    );
    let mut rows = Vec::new();
    for store in &stores {
        let backend = seed::Backend::parse(store).expect("FLOTTA_FLEET_STORES: sqlite or postgres");
        let empty_rss = server::empty_rss_kib(backend, objects);
        for &devices in &sizes {
            let started = Instant::now();
            let run = Run {
                backend,
                objects,
                devices,
                threads,
                paced,
                settle,
            };
            let row = run.run(empty_rss);
            println!("{backend} {devices}: done in {:.0?}", started.elapsed());
            // Each row as soon as it is measured: a later size may not finish.
            println!("{}", report::table(std::slice::from_ref(&row)));
            rows.push(row);
        }
    }
    println!("\n{}", report::table(&rows));
    println!("{}", report::GOAL);
    let failures: usize = rows.iter().map(|r| r.failures).sum();
    assert_eq!(failures, 0, "some windows failed");
}

/// One store and fleet size.
struct Run {
    backend: seed::Backend,
    objects: cluster::Objects,
    devices: usize,
    threads: usize,
    paced: Duration,
    /// The Kubernetes mode's quiet time before the paced phase.
    settle: Duration,
}

impl Run {
    fn run(&self, empty_rss_kib: u64) -> Row {
        let Run {
            backend, devices, ..
        } = *self;
        let t = Instant::now();
        let fleet = seed::Fleet::seed(backend, self.objects, devices);
        let seed_time = t.elapsed();
        println!("{backend} {devices}: seeded in {seed_time:.1?}");

        let label = format!("{backend} {devices}:");
        let mut kube = fleet
            .cluster
            .as_ref()
            .map(|_| kube_phases::Recorder::new(label.clone()));
        let t = Instant::now();
        let srv = server::Server::start(&fleet);
        let start_time = t.elapsed();
        println!(
            "{backend} {devices}: server ready in {start_time:.1?} (its first controller pass goes on meanwhile)"
        );
        if let (Some(kube), Some(cluster)) = (kube.as_mut(), fleet.cluster.as_ref()) {
            kube.objects(&srv, cluster, devices);
        }
        let mark = |kube: &mut Option<kube_phases::Recorder>, phase: &str| {
            if let Some(kube) = kube {
                kube.mark(&srv, phase);
            }
        };

        let clients = windows::Clients::new(&fleet, &srv);
        let first = clients.upload_all(0, self.threads);
        println!("{backend} {devices}: first contact {first}");
        mark(&mut kube, "first contact");
        let size_before = fleet.store_bytes();
        let hour = clients.upload_all(1, self.threads);
        println!("{backend} {devices}: resumed hour {hour}");
        mark(&mut kube, "resumed hour");
        let size_after = fleet.store_bytes();
        let rate = devices as f64 / 3600.0;
        let paced_run = match kube.as_mut() {
            None => clients.paced(2, rate, self.paced),
            Some(kube) => {
                kube.settle(&srv, self.settle);
                kube.paced(&srv, &clients, rate, self.paced, KUBE_WARM_UP)
            }
        };
        println!("{backend} {devices}: paced {paced_run}");
        let handshakes = srv.handshakes();
        let server_passes = (srv.passes("full"), srv.passes("incremental"));
        let rss = srv.rss_kib();
        srv.stop();
        drop(clients);

        let in_process = kube.is_none() && env_num("FLOTTA_FLEET_CONTROLLER", 1) == 1;
        let (first_pass, steady_pass) = if in_process {
            fleet.controller_passes()
        } else {
            (Duration::ZERO, Duration::ZERO)
        };
        let failures = first.failures + hour.failures + paced_run.failures;
        Row {
            backend: match kube {
                Some(_) => format!("{backend}+k8s"),
                None => backend.to_string(),
            },
            devices,
            seed: seed_time,
            start: start_time,
            first,
            hour,
            paced: paced_run,
            handshakes,
            rss_kib: rss,
            empty_rss_kib,
            store_bytes_per_window: size_after.saturating_sub(size_before) as f64 / devices as f64,
            store_bytes_total: size_after,
            first_pass,
            steady_pass,
            server_passes,
            kube: kube.map(|k| k.phases).unwrap_or_default(),
            failures,
        }
    }
}
