//! The controller: pure functions over the [`Store`] that turn CRD objects
//! and device reports into what devices get and what operators see.
//!
//! One pass, per device: enrolment request and approval ([`enrolment`]),
//! EdgeDevice with hardware labels, workload placement ([`placement`]),
//! configuration (device set before device, section by section; the
//! ConfigMaps and Secrets the placed workloads reference, [`configmaps`],
//! [`secrets`]; a new version only when the message changed), and status
//! with presence ([`presence`]); then each workload's references
//! condition ([`references`]). Time comes in as `now_ms`, so tests drive it.
//!
//! `serve` runs passes on an interval and after admin writes through a
//! [`runner::Runner`], whose [`incremental::Tracker`] looks only at the
//! devices whose inputs changed (and does a full [`reconcile`] at start, in
//! a new leadership term and every `controller_resync_seconds`); enrolment
//! and registration run [`reconcile_device`] for their device.

pub mod configmaps;
pub mod enrolment;
pub mod incremental;
pub mod placement;
pub mod pod_refs;
pub mod presence;
pub mod references;
pub mod runner;
pub mod secrets;
pub mod status;
pub mod wire;

use std::collections::HashMap;

use serde_json::{Value, json};

pub use presence::{Presence, presence};

use crate::device_id::DeviceId;
use crate::objects::{Kind, ObjectError, ObjectSource};
use crate::store::{Approval, Device, Store, StoreError};

/// What the controller needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A device is offline after this many heartbeat periods without news.
    pub offline_after_missed_heartbeats: u32,
    /// Heartbeat period of devices whose objects set none.
    pub default_heartbeat_period_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            offline_after_missed_heartbeats: 3,
            default_heartbeat_period_seconds: wire::DEFAULT_HEARTBEAT_PERIOD_SECONDS,
        }
    }
}

/// A controller pass failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored object is unusable.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The blocking task running the pass panicked or was cancelled.
    #[error("controller pass aborted: {0}")]
    Internal(String),
}

impl ControllerError {
    /// Whether running the pass again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ControllerError::Store(e) => e.is_retriable(),
            ControllerError::Object(e) => e.is_retriable(),
            ControllerError::Internal(_) => true,
        }
    }
}

/// What a pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Enrolled devices.
    pub devices: usize,
    /// Devices whose pass ran (all of them in a full pass).
    pub looked_at: usize,
    /// Devices left alone because none of their inputs changed.
    pub skipped: usize,
    /// Whether every device was looked at.
    pub full: bool,
    /// Devices whose configuration got a new version.
    pub configs_changed: usize,
    /// Devices per presence.
    pub presence: HashMap<Presence, usize>,
    /// Devices skipped because of an unusable object (logged).
    pub errors: usize,
}

/// `ms` since the epoch as RFC 3339 (UTC, seconds).
pub fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Per-namespace objects loaded once per pass.
#[derive(Default)]
struct Cache {
    workloads: HashMap<String, Vec<placement::Candidate>>,
    sets: HashMap<(String, String), Option<Value>>,
}

impl Cache {
    fn workloads(
        &mut self,
        objects: &dyn ObjectSource,
        ns: &str,
    ) -> Result<&[placement::Candidate], StoreError> {
        if !self.workloads.contains_key(ns) {
            let workloads = objects.list(Kind::EdgeWorkload.as_str(), Some(ns))?;
            let configmaps = objects.list(Kind::ConfigMap.as_str(), Some(ns))?;
            let secrets = objects.list(Kind::Secret.as_str(), Some(ns))?;
            self.workloads.insert(
                ns.to_owned(),
                placement::candidates(&workloads, &configmaps, &secrets),
            );
        }
        Ok(self.workloads.get(ns).map(Vec::as_slice).unwrap_or(&[]))
    }

    fn set_spec(
        &mut self,
        objects: &dyn ObjectSource,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, StoreError> {
        let key = (ns.to_owned(), name.to_owned());
        if let Some(v) = self.sets.get(&key) {
            return Ok(v.clone());
        }
        let spec = objects
            .get(Kind::EdgeDeviceSet.as_str(), ns, name)?
            .and_then(|o| o.body.get("spec").cloned());
        self.sets.insert(key, spec.clone());
        Ok(spec)
    }
}

/// One full pass over every enrolled device. A store failure ends the pass;
/// an unusable object only skips its device (counted in [`Report::errors`]).
pub fn reconcile(
    store: &dyn Store,
    objects: &dyn ObjectSource,
    settings: Settings,
    now_ms: u64,
) -> Result<Report, ControllerError> {
    full_pass(Inputs::new(store, objects, settings, now_ms), |_, _| {})
}

/// What a pass reads: the store, the objects, the settings and the time.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    store: &'a dyn Store,
    objects: &'a dyn ObjectSource,
    settings: Settings,
    now_ms: u64,
}

impl<'a> Inputs<'a> {
    fn new(
        store: &'a dyn Store,
        objects: &'a dyn ObjectSource,
        settings: Settings,
        now_ms: u64,
    ) -> Self {
        Self {
            store,
            objects,
            settings,
            now_ms,
        }
    }
}

/// [`reconcile`], telling `seen` each device and what its pass found
/// (`None`: an unusable object).
fn full_pass(
    inputs: Inputs<'_>,
    mut seen: impl FnMut(&Device, Option<&Outcome>),
) -> Result<Report, ControllerError> {
    let mut cache = Cache::default();
    let mut report = Report {
        full: true,
        ..Report::default()
    };
    for device in inputs.store.devices()? {
        report.devices += 1;
        report.looked_at += 1;
        let outcome = run_device(inputs, &mut cache, &device)?;
        report.count(outcome.as_ref());
        seen(&device, outcome.as_ref());
    }
    references::sync_conditions(inputs.objects, &rfc3339(inputs.now_ms))?;
    Ok(report)
}

impl Report {
    /// Count one device's pass.
    fn count(&mut self, outcome: Option<&Outcome>) {
        match outcome {
            Some(o) => {
                self.configs_changed += usize::from(o.changed);
                *self.presence.entry(o.presence).or_default() += 1;
            }
            None => self.errors += 1,
        }
    }
}

/// [`device_pass`], with an unusable object logged and answered `None`:
/// one device's trouble must not stall every other device; a store that
/// fails still fails the pass.
fn run_device(
    i: Inputs<'_>,
    cache: &mut Cache,
    device: &Device,
) -> Result<Option<Outcome>, ControllerError> {
    match device_pass(i.store, i.objects, i.settings, cache, device, i.now_ms) {
        Ok(outcome) => Ok(Some(outcome)),
        Err(ControllerError::Store(e)) => Err(ControllerError::Store(e)),
        Err(e) => {
            tracing::warn!(device = %device.id, "controller: {e}");
            Ok(None)
        }
    }
}

/// What one device's pass found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// Its configuration got a new version.
    changed: bool,
    /// Its presence now.
    presence: Presence,
    /// The interval its presence was judged with
    /// ([`presence::expected_interval_seconds`]).
    interval_seconds: u64,
    /// The EdgeDeviceSet it is a member of (approved devices).
    member_of: Option<String>,
}

/// A pass for one device (after its enrolment or registration). Returns
/// whether its configuration got a new version; a device not enrolled is a
/// no-op.
pub fn reconcile_device(
    store: &dyn Store,
    objects: &dyn ObjectSource,
    settings: Settings,
    id: &DeviceId,
    now_ms: u64,
) -> Result<bool, ControllerError> {
    let Some(device) = store.device(id)? else {
        return Ok(false);
    };
    Ok(device_pass(
        store,
        objects,
        settings,
        &mut Cache::default(),
        &device,
        now_ms,
    )?
    .changed)
}

/// The presence of a device now, with the heartbeat period of its current
/// configuration or the upload interval it reported, whichever is longer.
pub fn device_presence(
    store: &dyn Store,
    settings: Settings,
    device: &Device,
    now_ms: u64,
) -> Result<Presence, StoreError> {
    Ok(stored_presence(store, settings, device, now_ms)?.presence)
}

/// The outcome of a pass that writes nothing for the device: its presence
/// with the heartbeat period of its stored configuration (or its reported
/// upload interval, when longer).
fn stored_presence(
    store: &dyn Store,
    settings: Settings,
    device: &Device,
    now_ms: u64,
) -> Result<Outcome, StoreError> {
    let period = store
        .configuration(&device.id)?
        .and_then(|c| {
            c.spec.get("configuration").map(|c| {
                wire::heartbeat_period_seconds(c, settings.default_heartbeat_period_seconds)
            })
        })
        .unwrap_or(settings.default_heartbeat_period_seconds);
    let interval = presence::expected_interval_seconds(period, device.contact_interval_seconds);
    Ok(Outcome {
        changed: false,
        presence: presence(
            device.last_seen_ms,
            interval,
            settings.offline_after_missed_heartbeats,
            now_ms,
        ),
        interval_seconds: interval,
        member_of: None,
    })
}

fn device_pass(
    store: &dyn Store,
    objects: &dyn ObjectSource,
    settings: Settings,
    cache: &mut Cache,
    device: &Device,
    now_ms: u64,
) -> Result<Outcome, ControllerError> {
    if device.decommissioned.is_some() {
        // Revoked: no objects (decommissioning deleted them; a pass that
        // raced it may have written them back).
        for kind in crate::store::ENROLMENT_OBJECT_KINDS {
            objects.delete(kind, device.namespace.as_str(), device.id.as_str())?;
        }
        return Ok(stored_presence(store, settings, device, now_ms)?);
    }
    let approval = enrolment::sync_request(store, objects, device, now_ms)?;
    if approval != Approval::Approved {
        return Ok(stored_presence(store, settings, device, now_ms)?);
    }
    let (object, labels) = enrolment::sync_device_object(store, objects, device, now_ms)?;
    let ns = device.namespace.as_str();
    let empty = json!({});
    let device_spec = object.body.get("spec").unwrap_or(&empty);
    let set_spec = match labels.get(flotta_crd::labels::MEMBER_OF) {
        Some(set) => cache.set_spec(objects, ns, set)?,
        None => None,
    };
    let default_period = settings.default_heartbeat_period_seconds;
    let configuration = wire::device_configuration(device_spec, set_spec.as_ref(), default_period);
    let period = wire::heartbeat_period_seconds(&configuration, default_period);
    let placed = placement::placed(device.id.as_str(), &labels, cache.workloads(objects, ns)?);
    let workloads: Vec<Value> = placed.iter().map(|c| c.wire.clone()).collect();
    // Each Secret once, however many workloads reference it.
    let secrets: std::collections::BTreeMap<&str, &Value> = placed
        .iter()
        .flat_map(|c| &c.secrets)
        .map(|s| (s.get("name").and_then(Value::as_str).unwrap_or_default(), s))
        .collect();
    let mut spec = json!({"configuration": configuration, "workloads": workloads});
    if !secrets.is_empty() {
        spec["secrets"] = secrets.into_values().cloned().collect();
    }
    let old = store.configuration(&device.id)?;
    let changed = old.as_ref().is_none_or(|c| c.spec != spec);
    if changed {
        store.set_configuration(&device.id, &spec)?;
    }
    let interval = presence::expected_interval_seconds(period, device.contact_interval_seconds);
    let p = presence(
        device.last_seen_ms,
        interval,
        settings.offline_after_missed_heartbeats,
        now_ms,
    );
    let new_status = status::device_status(object.body.get("status"), device, p);
    if object.body.get("status") != Some(&new_status) {
        objects.put_status(&object.kind, &object.namespace, &object.name, &new_status)?;
    }
    Ok(Outcome {
        changed,
        presence: p,
        interval_seconds: interval,
        member_of: labels.get(flotta_crd::labels::MEMBER_OF).cloned(),
    })
}

#[cfg(test)]
mod incremental_tests;
#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod tests;
