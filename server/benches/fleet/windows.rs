//! The devices' side: one HTTPS client per device (its own certificate and
//! TLS session cache, so its second connection resumes), uploading windows of
//! [`WINDOW_HEARTBEATS`] heartbeats to the batch route.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flotta_proto::batch::{
    BATCH_CONTENT_TYPE, BATCH_FORMAT_VERSION, BatchRequest, BatchResponse, WireRecord, batch_path,
};
use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload};

use crate::WINDOW_HEARTBEATS;
use crate::seed::Fleet;
use crate::server::Server;

/// What one phase of uploads measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Phase {
    pub(crate) windows: usize,
    pub(crate) failures: usize,
    pub(crate) elapsed: Duration,
    /// Window latencies, sorted.
    pub(crate) latencies: Vec<Duration>,
}

impl Phase {
    pub(crate) fn windows_per_second(&self) -> f64 {
        self.windows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} windows in {:.1?} ({:.0} windows/s, {:.0} records/s), p50 {:.1?} p99 {:.1?}, {} failed",
            self.windows,
            self.elapsed,
            self.windows_per_second(),
            self.windows_per_second() * WINDOW_HEARTBEATS as f64,
            self.percentile(0.5),
            self.percentile(0.99),
            self.failures
        )
    }
}

/// The upload interval the windows report (batch format 3): 3600 s, or
/// none with `FLOTTA_FLEET_REPORT_INTERVAL=0` (an agent from before format 3,
/// judged from the heartbeat period alone).
fn reported_interval() -> Option<u32> {
    (crate::env_num("FLOTTA_FLEET_REPORT_INTERVAL", 1) != 0)
        .then_some(crate::UPLOAD_INTERVAL_SECONDS)
}

/// Window `index` of a device: heartbeats 60 s apart, numbered on from the
/// previous window's, in the batch an agent uploading every
/// [`crate::UPLOAD_INTERVAL_SECONDS`] sends.
fn window(index: usize) -> Vec<u8> {
    let first = (index * WINDOW_HEARTBEATS) as u64 + 1;
    let records = (0..WINDOW_HEARTBEATS as u64)
        .map(|i| {
            let payload = Payload::Heartbeat(Heartbeat {
                status: DeviceStatus::Up,
                agent_version: "0.1.0".into(),
                uptime_seconds: (first + i) * 60,
                queue_records: 0,
                queue_bytes: 0,
                dropped_records: [0; 3],
                damaged_bytes: 0,
                battery_percent: Some(80),
                workloads: vec![],
            });
            WireRecord {
                seq: first + i,
                at_ms: 1_780_000_000_000 + (first + i) * 60_000,
                class: payload.class(),
                payload: payload.encode(),
            }
        })
        .collect();
    BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: String::new(),
        records,
        frame_epoch: None,
        upload_interval_seconds: reported_interval(),
    }
    .encode()
}

/// Every device's client.
pub(crate) struct Clients {
    base: String,
    devices: Vec<(String, ureq::Agent)>,
}

impl Clients {
    pub(crate) fn new(fleet: &Fleet, server: &Server) -> Self {
        Clients {
            base: server.base.clone(),
            devices: fleet
                .devices
                .iter()
                .map(|(name, cert)| {
                    (
                        name.clone(),
                        crate::common::mtls_agent(fleet.pki.ca().cert_pem(), cert),
                    )
                })
                .collect(),
        }
    }

    /// Device `i` uploads window `index`; whether the server acknowledged
    /// every record of it.
    fn upload(&self, i: usize, body: &[u8], index: usize) -> bool {
        let (name, agent) = &self.devices[i];
        let want = ((index + 1) * WINDOW_HEARTBEATS) as u64;
        agent
            .post(format!("{}{}", self.base, batch_path(name)))
            .header("content-type", BATCH_CONTENT_TYPE)
            .send(body)
            .ok()
            .is_some_and(|mut r| {
                r.status() == 200
                    && r.body_mut()
                        .read_to_vec()
                        .ok()
                        .and_then(|b| BatchResponse::decode(&b).ok())
                        .is_some_and(|b| b.acked_through == Some(want))
            })
    }

    /// Every device uploads window `index`, `threads` at a time, as fast as
    /// they go.
    pub(crate) fn upload_all(&self, index: usize, threads: usize) -> Phase {
        let body = window(index);
        run_jobs(threads, self.devices.len(), |i| {
            let sent = Instant::now();
            let ok = self.upload(i, &body, index);
            (sent.elapsed(), ok)
        })
    }

    /// Devices upload window `index` one after another at `rate` windows/s
    /// for `duration` (open loop: a window's latency counts from when it was
    /// due, so queueing behind a slow server shows).
    pub(crate) fn paced(&self, index: usize, rate: f64, duration: Duration) -> Phase {
        let body = window(index);
        let due = (rate * duration.as_secs_f64()).ceil().max(1.0) as usize;
        let started = Instant::now();
        // Enough senders that a slow window never delays the next one's start.
        run_jobs(8, due.min(self.devices.len()), |k| {
            let at = started + Duration::from_secs_f64(k as f64 / rate);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let ok = self.upload(k, &body, index);
            (at.elapsed(), ok)
        })
    }
}

/// `workers` threads take jobs `0..count` in order; a job returns its
/// latency and whether it succeeded.
fn run_jobs(workers: usize, count: usize, job: impl Fn(usize) -> (Duration, bool) + Sync) -> Phase {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Phase::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut mine = Phase::default();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= count {
                        break;
                    }
                    let (latency, ok) = job(k);
                    mine.latencies.push(latency);
                    mine.failures += usize::from(!ok);
                }
                let mut all = results.lock().unwrap();
                all.latencies.extend(mine.latencies);
                all.failures += mine.failures;
            });
        }
    });
    let mut phase = results.into_inner().unwrap();
    phase.elapsed = started.elapsed();
    phase.windows = phase.latencies.len();
    phase.latencies.sort();
    phase
}
