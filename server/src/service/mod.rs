//! What devices can do, independent of HTTP: enrol, register (or renew),
//! report status, upload batches, fetch configuration; and what operators can
//! do (approve). Store calls run on tokio's blocking pool.

mod config_message;
mod error;
mod identity;

use std::sync::Arc;

use flotta_proto::batch::{BatchResponse, ConfigUpdate};
use serde_json::Value;

pub use config_message::{DEFAULT_VERSION, configuration_message, default_spec};
pub use error::ServiceError;
pub use identity::revoke_frame_keys;

use crate::clock::Clock;
use crate::clock::unix_ms;
use crate::config::Config;
use crate::controller::{self, Settings};
use crate::decode::{DecodedBatch, class_word, heartbeat_events};
use crate::device_id::{DeviceId, Namespace};
use crate::frames::FrameKeyring;
use crate::link_stats::LinkTally;
use crate::metrics::{ClassLabels, Metrics};
use crate::models::{EnrolmentInfo, HeartbeatInfo, RegistrationInfo};
use crate::objects::ObjectSource;
use crate::pki::{ClientIdentity, Pki, Role, Validity};
use crate::store::{
    Approval, Contact, ENROLMENT_OBJECT_KINDS, EnrolOutcome, IssuedCertificate, LinkUsage,
    StatusUpdate, Store, StoreError, TLS_LINK,
};

/// Delete the device's enrolment objects (its EdgeDeviceSignedRequest and
/// EdgeDevice) from the object source, as the store already did with its
/// own copies when it started the enrolment over or decommissioned the
/// device: an approval left in a cluster would be copied back.
fn forget_enrolment_objects(
    objects: &dyn ObjectSource,
    namespace: &Namespace,
    id: &DeviceId,
) -> Result<(), StoreError> {
    for kind in ENROLMENT_OBJECT_KINDS {
        objects.delete(kind, namespace.as_str(), id.as_str())?;
    }
    Ok(())
}

/// Run the controller for one device after its enrolment or registration.
/// The device's request already succeeded; a failed pass is logged and
/// repeated by the next periodic pass.
fn reconcile_after(
    store: &dyn Store,
    objects: &dyn ObjectSource,
    settings: Settings,
    id: &DeviceId,
    now_ms: u64,
) {
    if let Err(e) = controller::reconcile_device(store, objects, settings, id, now_ms) {
        tracing::warn!(device = %id, "controller pass after enrolment failed: {e}");
    }
}

/// The device-facing operations, shared by all connections.
#[derive(Debug, Clone)]
pub struct EdgeService {
    store: Arc<dyn Store>,
    objects: Arc<dyn ObjectSource>,
    pki: Arc<Pki>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    keyring: Arc<FrameKeyring>,
    /// Counts what this process ingested (batches, heartbeats): followers
    /// of the event and log feeds wake on it instead of waiting for their
    /// next poll.
    ingested: Arc<tokio::sync::watch::Sender<u64>>,
    /// TLS link statistics known after their write (answers' bytes), taken
    /// by the device's next write (`store/link_days.rs`).
    link_tally: Arc<LinkTally>,
}

impl EdgeService {
    /// Assemble the service.
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn ObjectSource>,
        pki: Arc<Pki>,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        keyring: Arc<FrameKeyring>,
    ) -> Self {
        Self {
            store,
            objects,
            pki,
            clock,
            config,
            metrics,
            keyring,
            ingested: Arc::new(tokio::sync::watch::Sender::new(0)),
            link_tally: Arc::new(LinkTally::new()),
        }
    }

    /// Changes whenever this process stored a batch or a heartbeat (rows
    /// other replicas store are not seen here: followers also poll).
    pub fn ingested(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ingested.subscribe()
    }

    fn note_ingested(&self) {
        self.ingested.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The frame keys of every device (shared with the UDP listener).
    pub fn keyring(&self) -> &Arc<FrameKeyring> {
        &self.keyring
    }

    /// The device's current frame keys when frames are on (made on first
    /// use, rotated when due).
    fn frame_keys(
        keyring: &FrameKeyring,
        enabled: bool,
        id: &DeviceId,
        now: u64,
    ) -> Result<Option<flotta_proto::frame_keys::FrameKeys>, ServiceError> {
        if !enabled {
            return Ok(None);
        }
        Ok(Some(keyring.current(id, now).map_err(ServiceError::from)?))
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Where Flotta's objects live (the store, or a cluster).
    pub fn objects(&self) -> &Arc<dyn ObjectSource> {
        &self.objects
    }

    /// The clock requests are judged by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Run `f` against the store on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store, &Pki, u64) -> Result<T, ServiceError> + Send + 'static,
    {
        let (store, pki, now) = (self.store.clone(), self.pki.clone(), self.clock.now_ms());
        tokio::task::spawn_blocking(move || f(&*store, &pki, now))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
    }

    /// Check the store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.blocking(|s, _, _| Ok(s.ping()?)).await
    }

    /// Enrol a device into the namespace it asks for (or the default one).
    pub async fn enrol(
        &self,
        id: DeviceId,
        info: EnrolmentInfo,
    ) -> Result<EnrolOutcome, ServiceError> {
        let ns = info
            .target_namespace
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.config.default_namespace);
        let ns = Namespace::parse(ns).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let hardware = info.features.and_then(|f| f.hardware);
        let auto = self.config.auto_approve;
        let settings = self.config.controller_settings();
        let grace_ms = u64::try_from(self.config.renewal_grace().as_millis()).unwrap_or(u64::MAX);
        let objects = self.objects.clone();
        self.blocking(move |s, _, now| {
            // A device whose certificate expired beyond the renewal grace
            // starts over: approved again according to `auto_approve`.
            let before = s.device(&id)?;
            if s.enrol_again_if_lapsed(&id, now.saturating_sub(grace_ms), auto)? {
                tracing::info!(device = %id, "certificate lapsed beyond the renewal grace: enrolling again");
                if let Some(before) = before {
                    forget_enrolment_objects(&*objects, &before.namespace, &id)?;
                }
            }
            let outcome = s.enrol(&id, &ns, hardware.as_ref(), auto, now)?;
            reconcile_after(s, &*objects, settings, &id, now);
            Ok(outcome)
        })
        .await
    }

    /// Approve a pending device (operators).
    pub async fn approve(&self, id: DeviceId) -> Result<(), ServiceError> {
        self.blocking(move |s, _, _| Ok(s.approve(&id)?)).await
    }

    /// Sign the device's CSR and record the registration. `identity` is who
    /// asks: the registration certificate (first registration) or the
    /// device's own certificate (renewal, allowed when expired for at most
    /// `renewal_grace_seconds`). Returns the certificate and, when frames
    /// are on, the device's current frame keys.
    pub async fn register(
        &self,
        id: DeviceId,
        identity: ClientIdentity,
        info: RegistrationInfo,
    ) -> Result<(String, Option<flotta_proto::frame_keys::FrameKeys>), ServiceError> {
        let (keyring, frames) = (self.keyring.clone(), self.config.frames_enabled());
        let lifetime = self.config.device_cert_validity();
        let now = self.clock.now();
        let settings = self.config.controller_settings();
        let renewal = matches!(&identity.role, Role::Device { id: own, .. } if *own == id);
        if renewal {
            identity::check_renewal_grace(&identity, now, self.config.renewal_grace())?;
        }
        let objects = self.objects.clone();
        self.blocking(move |s, pki, now_ms| {
            let device = s
                .device(&id)?
                .ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
            if let Some(d) = &device.decommissioned {
                return Err(ServiceError::Forbidden(format!(
                    "device \"{}\" was decommissioned by \"{}\"; enrol it again (an operator must approve it)",
                    id.as_str(),
                    d.by
                )));
            }
            if device.approval == Approval::Pending {
                return Err(ServiceError::NotApproved(id.to_string()));
            }
            if !renewal && device.cert_used {
                return Err(ServiceError::Forbidden(format!(
                    "device \"{}\" already uses its own certificate; renew it with that certificate, not the registration certificate",
                    id.as_str()
                )));
            }
            // Made before the certificate is recorded, so that a failure
            // here leaves the registration undone rather than half done.
            let keys = Self::frame_keys(&keyring, frames, &id, now_ms)?;
            let cert = pki.ca().sign_device_csr(
                &info.certificate_request,
                &id,
                &device.namespace,
                Validity::starting_at(now, lifetime)?,
            )?;
            let issued = ClientIdentity::from_pem(&cert)?;
            let record = IssuedCertificate {
                serial: issued.serial,
                not_after_ms: unix_ms(issued.not_after),
                renewal,
            };
            s.record_certificate(&id, &record, info.hardware.as_ref(), now_ms)?;
            reconcile_after(s, &*objects, settings, &id, now_ms);
            Ok((cert, keys))
        })
        .await
    }

    /// Apply a Flotta JSON heartbeat and store its events (`sent` is the
    /// message's send time, which identifies the events of a retry).
    pub async fn heartbeat(
        &self,
        id: DeviceId,
        info: HeartbeatInfo,
        raw: Value,
        sent: Option<String>,
    ) -> Result<(), ServiceError> {
        let events = heartbeat_events(&info, sent.as_deref(), self.clock.now_ms());
        let update = StatusUpdate {
            status: info.status.unwrap_or_else(|| "up".into()),
            heartbeat: raw,
            hardware: info.hardware,
            seq: None,
        };
        self.blocking(move |s, _, now| Ok(s.update_status(&id, &update, &events, now)?))
            .await?;
        self.note_ingested();
        Ok(())
    }

    /// The device's `device-configuration-message` and its version.
    pub async fn configuration(&self, id: DeviceId) -> Result<(String, Value), ServiceError> {
        let period = self.config.default_heartbeat_period_seconds;
        self.blocking(move |s, _, _| configuration_message(s, &id, period))
            .await
    }

    /// An answer of `bytes` sent to the device over TLS: counted with its
    /// next write (`store/link_days.rs`).
    pub fn answered_tls(&self, id: &DeviceId, bytes: usize) {
        let usage = LinkUsage {
            bytes_down: u64::try_from(bytes).unwrap_or(u64::MAX),
            ..LinkUsage::default()
        };
        self.link_tally.add(id, TLS_LINK, &usage);
    }

    /// Keep `usage` of a request that wrote nothing (a poll: Flotta's
    /// device worker polls twice every 5 s) in memory: counted with the
    /// device's next write over TLS, never a transaction of its own.
    pub fn tally_tls_usage(&self, id: &DeviceId, usage: &LinkUsage) {
        self.link_tally.add(id, TLS_LINK, usage);
    }

    /// Add `usage` (and what waits from earlier answers and polls) to the
    /// device's TLS statistics of today, alone (routes that write without a
    /// link transaction of their own). A failure is logged; the counts wait
    /// for the next write.
    pub async fn record_tls_usage(&self, id: DeviceId, usage: LinkUsage) {
        let tally = self.link_tally.clone();
        let result = self
            .blocking(move |s, _, now| {
                let mut all = usage;
                all.add(&tally.take(&id, TLS_LINK));
                if let Err(e) = s.add_link_usage(&id, TLS_LINK, &all, now) {
                    tally.add(&id, TLS_LINK, &all);
                    return Err(e.into());
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!("link statistics not written: {e}");
        }
    }

    /// Store a decoded batch; answer what is durably stored, when the
    /// device's configuration version is stale the current configuration,
    /// and (format 2, frames on) its frame keys when its epoch is not the
    /// current one. Encode the answer with `encode_for(batch.format)`.
    /// `usage` (the request's window, handshake and bytes) and what waits
    /// from earlier answers go into the batch's transaction.
    pub async fn ingest_batch(
        &self,
        id: DeviceId,
        batch: DecodedBatch,
        usage: LinkUsage,
    ) -> Result<BatchResponse, ServiceError> {
        let tally = self.link_tally.clone();
        let metrics = self.metrics.clone();
        let period = self.config.default_heartbeat_period_seconds;
        let (keyring, frames) = (self.keyring.clone(), self.config.frames_enabled());
        let response = self
            .blocking(move |s, _, now| {
                for r in &batch.records {
                    let class = class_word(r.class).to_owned();
                    metrics.records.get_or_create(&ClassLabels { class }).inc();
                }
                metrics.batches.inc();
                let mut usage = usage;
                usage.add(&tally.take(&id, TLS_LINK));
                let contact = Contact {
                    at_ms: now,
                    upload_interval_seconds: batch.upload_interval_seconds,
                    usage,
                };
                let acked_through =
                    match s.ingest_batch(&id, &batch.records, batch.status.as_ref(), contact) {
                        Ok(a) => a,
                        Err(e) => {
                            // Counted with the device's next write instead.
                            tally.add(&id, TLS_LINK, &usage);
                            return Err(e.into());
                        }
                    };
                let (version, message) = configuration_message(s, &id, period)?;
                let config = (version != batch.config_version).then(|| ConfigUpdate {
                    version,
                    message_json: message.to_string(),
                });
                // Format 2 says which frame epoch the device holds: hand it the
                // current keys when they differ (first delivery, rotation).
                let frame_keys = match batch.format >= 2 {
                    true => Self::frame_keys(&keyring, frames, &id, now)?
                        .filter(|k| batch.frame_epoch != Some(k.epoch)),
                    false => None,
                };
                Ok(BatchResponse {
                    acked_through,
                    config,
                    frame_keys,
                })
            })
            .await;
        self.note_ingested();
        response
    }
}
