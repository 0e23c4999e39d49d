//! The incremental controller pass: a [`Tracker`] kept in memory on the
//! leader runs the same per-device pass as [`super::reconcile`], but only
//! for devices whose inputs changed, with exactly the result a full pass
//! would have (the equivalence invariant, ARCHITECTURE.md; the property
//! test in `incremental_tests.rs` holds it).
//!
//! A device is looked at when
//! - its row changed in the store's change feed (`store/changes.rs`:
//!   enrolment, approval, labels, hardware, reported status or workload
//!   phases, decommissioning, first contact, and the first contact after
//!   the tracker judged it offline, asked for with
//!   [`Store::wake_on_contact`]), whichever replica wrote it;
//! - its EdgeDevice or EdgeDeviceSignedRequest changed; the EdgeDeviceSet it
//!   is a member of changed; an EdgeWorkload, ConfigMap or Secret of its
//!   namespace changed (from the store's feed, or from the cluster mirrors'
//!   [`ObjectSource::object_changes`]);
//! - its presence deadline passed (`last seen + interval × missed`, the
//!   interval being the heartbeat period or the reported upload interval,
//!   whichever is longer; kept in a
//!   sorted set): a device heard from since is only given a later deadline,
//!   one still silent goes offline through its pass;
//! - its last pass failed on an unusable object, or it was heard from while
//!   the tracker asked to be woken.
//!
//! A heartbeat of an online device that only moves "last seen" makes no
//! work. A full pass runs first, after a failed pass, in a new leadership
//! term ([`Tracker::forget`]), every `controller_resync_seconds`, and always
//! over an object source that cannot tell its changes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use super::{
    Cache, ControllerError, Inputs, Outcome, Presence, Report, Settings, full_pass, presence,
    references, rfc3339, run_device,
};
use crate::device_id::DeviceId;
use crate::objects::{Kind, ObjectChanges, ObjectSource};
use crate::store::{ChangeCursor, Device, ObjectKey, SeenAt, Store, StoreError};

/// The leader's memory between passes (module docs).
#[derive(Debug)]
pub struct Tracker {
    resync_ms: u64,
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    cursor: ChangeCursor,
    /// Cursor of an object source with a feed of its own (the cluster).
    object_cursor: Option<u64>,
    known: HashMap<DeviceId, Known>,
    deadlines: BTreeSet<(u64, DeviceId)>,
    /// Looked at in the next pass whatever changes.
    again: BTreeSet<DeviceId>,
    /// Judged offline in this pass: ask to be woken by their next contact.
    to_wake: Vec<SeenAt>,
    full_at_ms: u64,
}

/// What the last pass of a device found.
#[derive(Debug)]
struct Known {
    namespace: String,
    member_of: Option<String>,
    /// `None`: the pass failed on an unusable object.
    presence: Option<Presence>,
    last_seen_ms: Option<u64>,
    /// The interval its presence was judged with (heartbeat period or
    /// reported upload interval, whichever is longer; a change of the
    /// latter is in the change feed).
    interval_seconds: u64,
    deadline_ms: Option<u64>,
}

impl Tracker {
    /// A tracker whose next pass is full, and which does a full pass again
    /// every `resync`.
    pub fn new(resync: Duration) -> Self {
        Self {
            resync_ms: u64::try_from(resync.as_millis()).unwrap_or(u64::MAX),
            state: None,
        }
    }

    /// Forget everything (a new leadership term: another leader may have
    /// passed meanwhile); the next pass is full.
    pub fn forget(&mut self) {
        self.state = None;
    }

    /// One pass: incremental when the tracker can tell what changed, else
    /// full. A failed pass leaves the tracker empty (the next one is full).
    pub fn pass(
        &mut self,
        store: &dyn Store,
        objects: &dyn ObjectSource,
        settings: Settings,
        now_ms: u64,
    ) -> Result<Report, ControllerError> {
        let inputs = Inputs::new(store, objects, settings, now_ms);
        let state = self
            .state
            .take()
            .filter(|s| now_ms < s.full_at_ms.saturating_add(self.resync_ms));
        let (report, state) = match state {
            Some(mut s) => {
                let report = s.incremental(inputs)?;
                (report, Some(s))
            }
            None => State::full(inputs)?,
        };
        self.state = state;
        Ok(report)
    }
}

impl State {
    /// A full pass; `None` for the state when the object source cannot
    /// tell its changes (every pass is full then).
    fn full(inputs: Inputs<'_>) -> Result<(Report, Option<State>), ControllerError> {
        let (store, settings, now_ms) = (inputs.store, inputs.settings, inputs.now_ms);
        let objects = inputs.objects;
        // Cursors first: what changes while the pass reads is seen again.
        let cursor = store.changes_since(None)?.cursor;
        let object_cursor = match objects.object_changes(None) {
            ObjectChanges::InStore => None,
            ObjectChanges::Since { cursor, .. } => Some(cursor),
            ObjectChanges::Unknown => {
                return Ok((full_pass(inputs, |_, _| {})?, None));
            }
        };
        let mut state = State {
            cursor,
            object_cursor,
            known: HashMap::new(),
            deadlines: BTreeSet::new(),
            again: BTreeSet::new(),
            to_wake: Vec::new(),
            full_at_ms: now_ms,
        };
        let report = full_pass(inputs, |device, outcome| {
            state.record(device, outcome, settings);
        })?;
        state.ask_to_wake(store)?;
        Ok((report, Some(state)))
    }

    fn incremental(&mut self, inputs: Inputs<'_>) -> Result<Report, ControllerError> {
        let (store, objects) = (inputs.store, inputs.objects);
        let (settings, now_ms) = (inputs.settings, inputs.now_ms);
        let changes = store.changes_since(Some(&self.cursor))?;
        let mut keys = changes.objects;
        if let ObjectChanges::Since { objects, cursor } = objects.object_changes(self.object_cursor)
        {
            keys.extend(objects);
            self.object_cursor = Some(cursor);
        }
        let mut dirty: BTreeSet<DeviceId> = changes.devices.into_iter().collect();
        dirty.append(&mut self.again);
        self.dirty_for_objects(&keys, &mut dirty);
        for id in self.due(now_ms) {
            if !dirty.contains(&id) && !self.still_online(store, &id, settings, now_ms)? {
                dirty.insert(id);
            }
        }
        let mut report = Report::default();
        let mut cache = Cache::default();
        for id in &dirty {
            let Some(device) = store.device(id)? else {
                self.forget(id);
                continue;
            };
            let outcome = run_device(inputs, &mut cache, &device)?;
            report.looked_at += 1;
            report.count(outcome.as_ref());
            self.record(&device, outcome.as_ref(), settings);
        }
        let workload_inputs = [Kind::EdgeWorkload, Kind::ConfigMap, Kind::Secret];
        if keys
            .iter()
            .any(|k| workload_inputs.iter().any(|w| w.as_str() == k.kind))
        {
            references::sync_conditions(objects, &rfc3339(now_ms))?;
        }
        self.ask_to_wake(store)?;
        self.cursor = changes.cursor;
        report.devices = self.known.len();
        report.skipped = report.devices.saturating_sub(report.looked_at);
        report.presence = HashMap::new();
        for p in self.known.values().filter_map(|k| k.presence) {
            *report.presence.entry(p).or_default() += 1;
        }
        Ok(report)
    }

    /// Devices whose inputs include one of `keys`.
    fn dirty_for_objects(&self, keys: &[ObjectKey], dirty: &mut BTreeSet<DeviceId>) {
        let mut namespaces: HashSet<&str> = HashSet::new();
        let mut sets: HashSet<(&str, &str)> = HashSet::new();
        for key in keys {
            if key.kind == Kind::EdgeDevice.as_str()
                || key.kind == Kind::EdgeDeviceSignedRequest.as_str()
            {
                if let Ok(id) = DeviceId::parse(&key.name) {
                    dirty.insert(id);
                }
            } else if key.kind == Kind::EdgeDeviceSet.as_str() {
                sets.insert((&key.namespace, &key.name));
            } else {
                namespaces.insert(&key.namespace);
            }
        }
        if namespaces.is_empty() && sets.is_empty() {
            return;
        }
        for (id, k) in &self.known {
            let member = k
                .member_of
                .as_deref()
                .is_some_and(|set| sets.contains(&(k.namespace.as_str(), set)));
            if member || namespaces.contains(k.namespace.as_str()) {
                dirty.insert(id.clone());
            }
        }
    }

    /// Devices whose presence deadline passed, taken out of the set.
    fn due(&mut self, now_ms: u64) -> Vec<DeviceId> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.deadlines.first() {
            if *at > now_ms {
                break;
            }
            if let Some((_, id)) = self.deadlines.pop_first() {
                due.push(id);
            }
        }
        due
    }

    /// A device whose deadline passed: when it was heard from since and is
    /// online still, nothing of its pass would change but the deadline,
    /// which it gets here. Returns whether that was all.
    fn still_online(
        &mut self,
        store: &dyn Store,
        id: &DeviceId,
        settings: Settings,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let Some(device) = store.device(id)? else {
            self.forget(id);
            return Ok(true);
        };
        let Some(known) = self.known.get_mut(id) else {
            return Ok(false);
        };
        let missed = settings.offline_after_missed_heartbeats;
        if device.last_seen_ms == known.last_seen_ms
            || known.presence != Some(Presence::Online)
            || presence(device.last_seen_ms, known.interval_seconds, missed, now_ms)
                != Presence::Online
        {
            return Ok(false);
        }
        known.last_seen_ms = device.last_seen_ms;
        known.deadline_ms = deadline(device.last_seen_ms, known.interval_seconds, settings);
        if let Some(at) = known.deadline_ms {
            self.deadlines.insert((at, id.clone()));
        }
        Ok(true)
    }

    fn forget(&mut self, id: &DeviceId) {
        if let Some(k) = self.known.remove(id)
            && let Some(at) = k.deadline_ms
        {
            self.deadlines.remove(&(at, id.clone()));
        }
    }

    /// What a device's pass found (`None`: an unusable object; looked at
    /// again next pass, as a full pass would).
    fn record(&mut self, device: &Device, outcome: Option<&Outcome>, settings: Settings) {
        self.forget(&device.id);
        let known = match outcome {
            None => {
                self.again.insert(device.id.clone());
                Known {
                    namespace: device.namespace.as_str().to_owned(),
                    member_of: None,
                    presence: None,
                    last_seen_ms: device.last_seen_ms,
                    interval_seconds: super::presence::expected_interval_seconds(
                        settings.default_heartbeat_period_seconds,
                        device.contact_interval_seconds,
                    ),
                    deadline_ms: None,
                }
            }
            Some(o) => {
                let deadline_ms = (o.presence == Presence::Online)
                    .then(|| deadline(device.last_seen_ms, o.interval_seconds, settings))
                    .flatten();
                if let Some(at) = deadline_ms {
                    self.deadlines.insert((at, device.id.clone()));
                }
                if o.presence == Presence::Offline {
                    self.to_wake.push(SeenAt {
                        id: device.id.clone(),
                        last_seen_ms: device.last_seen_ms,
                    });
                }
                Known {
                    namespace: device.namespace.as_str().to_owned(),
                    member_of: o.member_of.clone(),
                    presence: Some(o.presence),
                    last_seen_ms: device.last_seen_ms,
                    interval_seconds: o.interval_seconds,
                    deadline_ms,
                }
            }
        };
        self.known.insert(device.id.clone(), known);
    }

    /// Ask the store to mark the devices judged offline at their next
    /// contact; one heard from meanwhile is looked at next pass.
    fn ask_to_wake(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        if self.to_wake.is_empty() {
            return Ok(());
        }
        let heard = store.wake_on_contact(&std::mem::take(&mut self.to_wake))?;
        self.again.extend(heard);
        Ok(())
    }
}

/// The first time at which a device last seen at `last_seen_ms`, expected
/// every `interval_seconds`, is offline.
fn deadline(last_seen_ms: Option<u64>, interval_seconds: u64, settings: Settings) -> Option<u64> {
    let allowed_ms = interval_seconds
        .saturating_mul(u64::from(settings.offline_after_missed_heartbeats))
        .saturating_mul(1000);
    Some(last_seen_ms?.saturating_add(allowed_ms).saturating_add(1))
}
