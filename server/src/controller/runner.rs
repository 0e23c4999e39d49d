//! Running the controller inside `serve`: a pass every
//! `controller_interval_seconds`, and on demand after admin writes; passes
//! never overlap. Each pass refreshes the devices-by-presence gauge.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use super::{ControllerError, Presence, Report, Settings, reconcile};
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
    lock: Arc<Mutex<()>>,
    leadership: Arc<dyn Leadership>,
}

impl Runner {
    /// A runner over `store`.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectSource>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            objects,
            clock,
            settings,
            metrics,
            lock: Arc::new(Mutex::new(())),
            leadership: Arc::new(Alone),
        }
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

    /// Run one full pass now (waiting for a running one to finish first);
    /// on a replica that does not lead, nothing (an empty report): the
    /// leader's next pass does it.
    pub async fn run_now(&self) -> Result<Report, ControllerError> {
        let leads = self.leadership.is_leader();
        self.metrics.leader.set(i64::from(leads));
        if !leads {
            return Ok(Report::default());
        }
        let _guard = self.lock.lock().await;
        let (store, objects) = (self.store.clone(), self.objects.clone());
        let (settings, now) = (self.settings, self.clock.now_ms());
        let report =
            tokio::task::spawn_blocking(move || reconcile(&*store, &*objects, settings, now))
                .await
                .map_err(|e| ControllerError::Internal(e.to_string()))??;
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

    /// Run a pass every `interval` until `shutdown` turns true.
    pub async fn run_loop(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            match self.run_now().await {
                Ok(r) => tracing::debug!(
                    devices = r.devices,
                    changed = r.configs_changed,
                    "controller pass"
                ),
                Err(e) => tracing::warn!("controller pass failed: {e}"),
            }
        }
    }
}
