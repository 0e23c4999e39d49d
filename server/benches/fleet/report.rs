//! The benchmark's table: one row per store and fleet size, beside the goal.

use std::fmt::Write;
use std::time::Duration;

use crate::WINDOW_HEARTBEATS;
use crate::kube_phases::{self, KubePhase};
use crate::server::Passes;
use crate::windows::Phase;

/// The goal the numbers are read against (issue #14).
pub(crate) const GOAL: &str = "goal: 100k devices at 60-s heartbeats (hourly windows: 28 windows/s, 1667 records/s) \
on one 2-core node, window p99 <= 100 ms, <= 2 KiB server RSS per device";

/// What one store and fleet size measured.
pub(crate) struct Row {
    pub(crate) backend: String,
    pub(crate) devices: usize,
    pub(crate) seed: Duration,
    pub(crate) start: Duration,
    pub(crate) first: Phase,
    pub(crate) hour: Phase,
    pub(crate) paced: Phase,
    /// Handshakes the server counted: full, resumed, failed.
    pub(crate) handshakes: (u64, u64, u64),
    pub(crate) rss_kib: u64,
    pub(crate) empty_rss_kib: u64,
    pub(crate) store_bytes_per_window: f64,
    pub(crate) store_bytes_total: u64,
    pub(crate) first_pass: Duration,
    pub(crate) steady_pass: Duration,
    /// The server's own passes during the run: full, incremental.
    pub(crate) server_passes: (Passes, Passes),
    /// The Kubernetes mode's requests by phase (empty otherwise).
    pub(crate) kube: Vec<KubePhase>,
    pub(crate) failures: usize,
}

impl Row {
    fn rss_per_device_kib(&self) -> f64 {
        self.rss_kib.saturating_sub(self.empty_rss_kib) as f64 / self.devices.max(1) as f64
    }

    /// Windows per second the fleet needs (one per device per hour).
    fn needed_windows_per_second(&self) -> f64 {
        self.devices as f64 / 3600.0
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The table, one line per row, then what each column means.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9}{:>8} {:>9} {:>9} {:>10} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "store",
        "devices",
        "seed s",
        "start s",
        "full w/s",
        "resume w/s",
        "rec/s",
        "p50 ms",
        "p99 ms",
        "pace p50",
        "pace p99",
        "need w/s",
        "KiB/dev",
        "B/dev-day",
        "pass1 ms",
        "pass ms",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<9}{:>8} {:>9.1} {:>9.1} {:>10.0} {:>10.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>9.1} {:>9.2} {:>10.0} {:>10} {:>10}",
            r.backend,
            r.devices,
            r.seed.as_secs_f64(),
            r.start.as_secs_f64(),
            r.first.windows_per_second(),
            r.hour.windows_per_second(),
            r.hour.windows_per_second() * WINDOW_HEARTBEATS as f64,
            ms(r.hour.percentile(0.5)),
            ms(r.hour.percentile(0.99)),
            ms(r.paced.percentile(0.5)),
            ms(r.paced.percentile(0.99)),
            r.needed_windows_per_second(),
            r.rss_per_device_kib(),
            r.store_bytes_per_window * 24.0,
            ms(r.first_pass),
            ms(r.steady_pass),
        );
    }
    for r in rows {
        let _ = writeln!(
            out,
            "{} {}: handshakes full {} resumed {} failed {}; server RSS {} MiB (empty server {} MiB); store {} MiB",
            r.backend,
            r.devices,
            r.handshakes.0,
            r.handshakes.1,
            r.handshakes.2,
            r.rss_kib / 1024,
            r.empty_rss_kib / 1024,
            r.store_bytes_total / (1024 * 1024),
        );
        let (full, incr) = r.server_passes;
        let _ = writeln!(
            out,
            "{} {}: server's controller passes during the run: {} full (mean {:.1?}, {} devices looked at), {} incremental (mean {:.1?}, {} devices looked at)",
            r.backend,
            r.devices,
            full.count,
            full.mean,
            full.looked_at,
            incr.count,
            incr.mean,
            incr.looked_at,
        );
        out.push_str(&kube_phases::table(
            &format!("{} {}:", r.backend, r.devices),
            &r.kube,
        ));
    }
    out.push_str(
        "columns: seed = CA, then enrol + certificate per device through the store library (8 writers); start = server \
start to ready (its first controller pass, creating every EdgeDevice, runs on during first contact); full w/s = first contact, every \
device a full TLS handshake; resume w/s, rec/s, p50/p99 = every device's next window on a resumed \
session, as fast as the client threads go (2 cores shared with the clients); pace p50/p99 = windows \
at the fleet's real rate (need w/s), latency from when each was due; KiB/dev = (server RSS - empty \
server RSS) / devices; B/dev-day = store growth of one window x 24; pass1/pass = full controller pass (the previous design's every pass) \
over the fleet after the load and in steady state (in this process, server stopped; 0 = skipped).\n",
    );
    out
}
