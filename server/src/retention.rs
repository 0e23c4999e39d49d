//! Record retention (`record_retention_days`): a background task that
//! deletes records of every class and events of Flotta JSON heartbeats the
//! server received more than that many days ago (`received_ms`, the
//! server's clock). Audit records are kept.
//!
//! A pass walks the devices by id in pages ([`Store::retention_page`]: a
//! device is looked at through its first record by `seq` only, so a fleet
//! with nothing old costs one index probe per device, not a scan of its
//! rows), deletes each candidate's old records in transactions of at most
//! [`RetentionSettings::chunk_rows`] rows, then the old JSON events the
//! same way, then the link statistics (`link_days`) of UTC days before the
//! cutoff's day, and sleeps [`RetentionSettings::pause`] after every store call
//! so that batches waiting for the store (SQLite has one connection) get
//! it between two chunks: ingest waits for at most one chunk, never for a
//! pass. A device's newest record is never deleted: its `seq` is what the
//! server acknowledges (`acked_through`), and a device's sequence numbers
//! must never go back.
//!
//! Passes run every [`RetentionSettings::interval`] on the replica that
//! leads ([`Leadership`]; deleting on two replicas at once would be safe,
//! only wasted). A shutdown stops a pass before its next chunk; what it
//! deleted stays deleted and the next pass goes on from the oldest rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::Clock;
use crate::device_id::DeviceId;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

const DAY_MS: u64 = 86_400_000;

/// How retention runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Keep records this many days after they were received; 0: forever
    /// (no pass runs).
    pub keep_days: u32,
    /// Time between two passes.
    pub interval: Duration,
    /// Time from start to the first pass.
    pub first_pass_after: Duration,
    /// Most rows one transaction deletes.
    pub chunk_rows: usize,
    /// Devices looked at per page read.
    pub device_page: usize,
    /// Sleep after every store call of a pass (room for ingest).
    pub pause: Duration,
}

impl RetentionSettings {
    /// The defaults for `keep_days`: hourly passes, the first a minute
    /// after start, chunks of 1000 rows, pages of 500 devices, 5 ms pauses.
    pub fn new(keep_days: u32) -> Self {
        Self {
            keep_days,
            interval: Duration::from_secs(3600),
            first_pass_after: Duration::from_secs(60),
            chunk_rows: 1000,
            device_page: 500,
            pause: Duration::from_millis(5),
        }
    }
}

/// A pass failed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The store refused or failed a call.
    #[error("retention: {0}")]
    Store(#[from] StoreError),
}

impl RetentionError {
    /// Whether the next pass may succeed where this one failed.
    pub fn is_retriable(&self) -> bool {
        match self {
            RetentionError::Store(e) => e.is_retriable(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Records received before this (ms since the Unix epoch) were due.
    pub cutoff_ms: u64,
    /// Devices looked at.
    pub devices: usize,
    /// Devices that had records to delete.
    pub pruned_devices: usize,
    /// Records deleted.
    pub records: usize,
    /// Events of Flotta JSON heartbeats deleted.
    pub json_events: usize,
    /// Link statistics rows (`link_days`) of days before the cutoff's
    /// UTC day deleted.
    pub link_days: usize,
    /// Deleting transactions.
    pub chunks: usize,
    /// Stopped early (shutdown).
    pub interrupted: bool,
    /// Wall time of the pass.
    pub took: Duration,
}

/// The retention task.
#[derive(Debug, Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
    metrics: Arc<Metrics>,
    leadership: Option<Arc<dyn Leadership>>,
}

impl Retention {
    /// Retention over `store` with the time of `clock`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: RetentionSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
            metrics,
            leadership: None,
        }
    }

    /// Run passes only while `leadership` says this replica leads.
    pub fn led_by(mut self, leadership: Arc<dyn Leadership>) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// Records received before this are due (`None`: kept forever).
    pub fn cutoff_ms(&self) -> Option<u64> {
        (self.settings.keep_days > 0).then(|| {
            self.clock
                .now_ms()
                .saturating_sub(u64::from(self.settings.keep_days).saturating_mul(DAY_MS))
        })
    }

    /// One pass, blocking; returns early (`interrupted`) once `stop` is set.
    pub fn pass(&self, stop: &AtomicBool) -> Result<PassReport, RetentionError> {
        let start = Instant::now();
        let Some(cutoff) = self.cutoff_ms() else {
            return Ok(PassReport::default());
        };
        let mut report = PassReport {
            cutoff_ms: cutoff,
            ..PassReport::default()
        };
        let result = self.prune(cutoff, stop, &mut report);
        report.took = start.elapsed();
        self.metrics
            .observe_retention(report.took, report.records, report.json_events);
        result.map(|()| report)
    }

    fn prune(
        &self,
        cutoff: u64,
        stop: &AtomicBool,
        report: &mut PassReport,
    ) -> Result<(), RetentionError> {
        let s = &self.settings;
        let chunk = s.chunk_rows.max(1);
        let mut after: Option<DeviceId> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(());
            }
            let page = self
                .store
                .retention_page(after.as_ref(), s.device_page.max(1), cutoff)?;
            report.devices += page.looked_at;
            self.rest();
            for id in &page.candidates {
                report.pruned_devices += 1;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        report.interrupted = true;
                        return Ok(());
                    }
                    let done = self.store.delete_expired_records(id, cutoff, chunk)?;
                    report.records += done.deleted;
                    report.chunks += 1;
                    self.rest();
                    if !done.more {
                        break;
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(());
            }
            let n = self.store.delete_expired_json_events(cutoff, chunk)?;
            report.json_events += n;
            report.chunks += 1;
            self.rest();
            if n < chunk {
                break;
            }
        }
        // A day's link statistics go once the whole day is past the cutoff.
        let before_day = crate::store::utc_day(cutoff);
        loop {
            if stop.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(());
            }
            let n = self.store.delete_expired_link_days(&before_day, chunk)?;
            report.link_days += n;
            report.chunks += 1;
            self.rest();
            if n < chunk {
                return Ok(());
            }
        }
    }

    fn rest(&self) {
        if !self.settings.pause.is_zero() {
            std::thread::sleep(self.settings.pause);
        }
    }

    /// Passes every `interval` (the first after `first_pass_after`) until
    /// `shutdown`; a running pass is stopped before its next chunk.
    pub async fn run_loop(self, mut shutdown: watch::Receiver<bool>) {
        if self.settings.keep_days == 0 {
            return;
        }
        let first = tokio::time::Instant::now() + self.settings.first_pass_after;
        let mut tick =
            tokio::time::interval_at(first, self.settings.interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if self.leadership.as_ref().is_some_and(|l| !l.is_leader()) {
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let (me, flag) = (self.clone(), stop.clone());
            let mut pass = tokio::task::spawn_blocking(move || me.pass(&flag));
            let finished = tokio::select! {
                r = &mut pass => Some(r),
                _ = shutdown.wait_for(|s| *s) => None,
            };
            let Some(result) = finished else {
                stop.store(true, Ordering::Relaxed);
                let _ = pass.await;
                return;
            };
            match result {
                Ok(Ok(r)) => tracing::info!(
                    records = r.records,
                    json_events = r.json_events,
                    link_days = r.link_days,
                    devices = r.devices,
                    pruned_devices = r.pruned_devices,
                    took_ms = u64::try_from(r.took.as_millis()).unwrap_or(u64::MAX),
                    "retention pass"
                ),
                Ok(Err(e)) => tracing::warn!(retriable = e.is_retriable(), "{e}"),
                Err(e) => tracing::warn!("retention pass panicked: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
