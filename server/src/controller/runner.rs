//! Running the controller inside `serve`: a pass every
//! `controller_interval_seconds`, and on demand after admin writes; passes
//! never overlap. Passes are incremental ([`Tracker`]); a new leadership
//! term forgets what the tracker kept, so its first pass is full. Each pass
//! refreshes the devices-by-presence gauge and the pass metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, watch};

use super::incremental::Tracker;
use super::{ControllerError, Presence, Report, Settings};
use crate::clock::Clock;
use crate::leader::{Alone, Leadership};
use crate::metrics::{Metrics, PresenceLabels};
use crate::objects::ObjectSource;
use crate::store::Store;

/// Shared handle to run controller passes.
#[derive(Debug, Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectSource>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    metrics: Arc<Metrics>,
    tracker: Arc<Mutex<Tracker>>,
    leadership: Arc<dyn Leadership>,
    /// The leadership term the tracker's memory belongs to (+1; 0: none).
    term: Arc<AtomicU64>,
    /// Set by [`Runner::run_loop`] at shutdown: a running pass stops
    /// between two devices instead of holding the shutdown up.
    stop: Arc<AtomicBool>,
}

/// Default of `controller_resync_seconds`.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);

impl Runner {
    /// A runner over `store`.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectSource>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tracker = Tracker::new(DEFAULT_RESYNC).stopping_on(stop.clone());
        Self {
            store,
            objects,
            clock,
            settings,
            metrics,
            tracker: Arc::new(Mutex::new(tracker)),
            leadership: Arc::new(Alone),
            term: Arc::new(AtomicU64::new(0)),
            stop,
        }
    }

    /// Do a full pass at least every `resync` (a safety net under the
    /// incremental passes).
    #[must_use]
    pub fn resync_every(mut self, resync: Duration) -> Self {
        let tracker = Tracker::new(resync).stopping_on(self.stop.clone());
        self.tracker = Arc::new(Mutex::new(tracker));
        self
    }

    /// Run passes only while `leadership` says this replica leads.
    #[must_use]
    pub fn led_by(mut self, leadership: Arc<dyn Leadership>) -> Self {
        self.leadership = leadership;
        self
    }

    /// Whether this replica runs passes now.
    pub fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }

    /// Run one pass now (waiting for a running one to finish first): full
    /// or incremental, as the tracker decides; on a replica that does not
    /// lead, nothing (an empty report): the leader's next pass does it.
    pub async fn run_now(&self) -> Result<Report, ControllerError> {
        let leads = self.leadership.is_leader();
        self.metrics.leader.set(i64::from(leads));
        if !leads {
            return Ok(Report::default());
        }
        let mut tracker = self.tracker.clone().lock_owned().await;
        let term = self.leadership.term().saturating_add(1);
        if self.term.swap(term, Ordering::SeqCst) != term {
            tracker.forget();
        }
        let (store, objects) = (self.store.clone(), self.objects.clone());
        let (settings, now) = (self.settings, self.clock.now_ms());
        let started = Instant::now();
        let report =
            tokio::task::spawn_blocking(move || tracker.pass(&*store, &*objects, settings, now))
                .await
                .map_err(|e| ControllerError::Internal(e.to_string()))??;
        self.metrics
            .observe_pass(report.full, started.elapsed(), report.looked_at);
        for p in Presence::ALL {
            let n = report.presence.get(&p).copied().unwrap_or(0);
            self.metrics
                .devices
                .get_or_create(&PresenceLabels {
                    presence: p.as_str().into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(report)
    }

    /// Run a pass every `interval` until `shutdown` turns true; a pass
    /// running then stops between two devices (the shutdown waits for one
    /// device's pass, not for the whole fleet's).
    pub async fn run_loop(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            let result = tokio::select! {
                r = self.run_now() => r,
                // The pass goes on in the blocking pool until its next
                // device; the runtime waits for that much at exit.
                _ = shutdown.wait_for(|s| *s) => break,
            };
            match result {
                Ok(r) => tracing::debug!(
                    full = r.full,
                    devices = r.devices,
                    looked_at = r.looked_at,
                    skipped = r.skipped,
                    changed = r.configs_changed,
                    "controller pass"
                ),
                Err(e) => tracing::warn!("controller pass failed: {e}"),
            }
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}
