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
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod report;
mod seed;
mod server;
mod windows;

use std::time::{Duration, Instant};

use report::Row;

/// Heartbeats in one upload window (an hour at 60-s heartbeats).
pub(crate) const WINDOW_HEARTBEATS: usize = 60;

fn env_list(key: &str, default: &str) -> Vec<String> {
    std::env::var(key)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_num(key: &str, default: u64) -> u64 {
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
    let stores = env_list("FLOTTA_FLEET_STORES", "sqlite,postgres");
    let threads = env_num("FLOTTA_FLEET_THREADS", 4).max(1) as usize;
    let paced = Duration::from_secs(if full {
        env_num("FLOTTA_FLEET_PACED_SECONDS", 20)
    } else {
        2
    });
    println!(
        "fleet: {sizes:?} devices on {stores:?}, {threads} client threads, windows of {WINDOW_HEARTBEATS} heartbeats{}",
        if full {
            ""
        } else {
            " (quick mode; `cargo bench -p flotta-server --bench fleet` for the full run)"
        }
    );
    let mut rows = Vec::new();
    for store in &stores {
        let backend = seed::Backend::parse(store).expect("FLOTTA_FLEET_STORES: sqlite or postgres");
        let empty_rss = server::empty_rss_kib(backend);
        for &devices in &sizes {
            let started = Instant::now();
            let row = run(backend, devices, threads, paced, empty_rss);
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

fn run(
    backend: seed::Backend,
    devices: usize,
    threads: usize,
    paced: Duration,
    empty_rss_kib: u64,
) -> Row {
    let t = Instant::now();
    let fleet = seed::Fleet::seed(backend, devices);
    let seed_time = t.elapsed();
    println!("{backend} {devices}: seeded in {seed_time:.1?}");

    let t = Instant::now();
    let srv = server::Server::start(&fleet);
    let start_time = t.elapsed();
    println!(
        "{backend} {devices}: server ready in {start_time:.1?} (its first controller pass goes on meanwhile)"
    );

    let clients = windows::Clients::new(&fleet, &srv);
    let first = clients.upload_all(0, threads);
    println!("{backend} {devices}: first contact {first}");
    let size_before = fleet.store_bytes();
    let hour = clients.upload_all(1, threads);
    println!("{backend} {devices}: resumed hour {hour}");
    let size_after = fleet.store_bytes();
    let paced_run = clients.paced(2, devices as f64 / 3600.0, paced);
    println!("{backend} {devices}: paced {paced_run}");
    let handshakes = srv.handshakes();
    let server_passes = (srv.passes("full"), srv.passes("incremental"));
    let rss = srv.rss_kib();
    srv.stop();
    drop(clients);

    let (first_pass, steady_pass) = if env_num("FLOTTA_FLEET_CONTROLLER", 1) == 1 {
        fleet.controller_passes()
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    let row = Row {
        backend: backend.to_string(),
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
        failures: 0,
    };
    Row {
        failures: row.first.failures + row.hour.failures + row.paced.failures,
        ..row
    }
}
