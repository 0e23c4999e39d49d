//! The workloads' supervisor: one [`Supervisor::pass`] reconciles the
//! pods with the desired workloads ([`reconcile`](super::reconcile)),
//! starts again what the restart policy says should run (with the
//! [`Backoff`]), and works out every workload's phase for the heartbeat.
//! It calls podman only through [`Podman`] and takes the time as an
//! argument, so every rule is tested against a model (`supervisor/tests.rs`);
//! `worker.rs` runs it on its own thread.
//!
//! Invariants:
//! - A device that was never given a workload never runs podman (a board
//!   without podman stays quiet).
//! - A failure is reported once, as a `Failed` event (Flotta's reason,
//!   level warn, podman's text), and again only when its text changes: a
//!   retry every few minutes does not fill the queue or the radio.
//! - A failed deployment is retried with the back-off, not at every pass;
//!   a new configuration for it is tried at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use flotta_proto::payload::{Event, Level, WorkloadState};
use serde_json::Value;

use super::containers::ObservedContainer;
use super::images::load_archives;
use super::log_cap::Limits;
use super::logs::{Emit, LogGate, RawLine};
use super::podman::{Following, Podman};
use super::reconcile::reconcile_holding;
use super::restart::{Backoff, RestartPolicy};
use super::secrets::Secrets;
use super::status::phases;

/// Where the supervisor keeps files, and its rules.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The supervisor's files (`<data_dir>/workloads`): play files in
    /// `pods/`, the record of loaded image archives.
    pub dir: PathBuf,
    /// Image archives to load (`images.rs`).
    pub images_dir: PathBuf,
    /// Images may be pulled on this link.
    pub pulls_allowed: bool,
    /// Back-off for restarts and for retried deployments.
    pub backoff: Backoff,
    /// Caps on each workload's log lines.
    pub log_limits: Limits,
}

/// Where the last log line taken per container is kept across restarts.
const LOGS_SINCE_FILE: &str = "logs-since.json";

/// The supervisor's state (module docs).
pub struct Supervisor {
    podman: Box<dyn Podman + Send>,
    settings: Settings,
    desired: Vec<Value>,
    /// The configuration's Secrets (`secrets.rs`).
    secrets: Secrets,
    /// Names of `desired`, in order.
    names: Vec<String>,
    /// Retries of failed deployments, per workload.
    deploys: Backoff,
    /// Starts of stopped workloads, per workload.
    restarts: Backoff,
    /// The failure last reported per workload (`""`: podman itself).
    reported: BTreeMap<String, String>,
    /// Crashes already reported: (container, start time).
    crashes_seen: BTreeSet<(String, i64)>,
    /// Each desired workload's phase after the last pass.
    states: Vec<WorkloadState>,
    /// Image archives must be looked at (at start, and after a failure:
    /// the missing image may have been copied there since).
    look_at_images: bool,
    /// Log lines into the queue (`logs.rs`).
    gate: LogGate,
    /// Log followers per container: (workload, follower).
    followers: BTreeMap<String, (String, Box<dyn Following>)>,
    /// What `LOGS_SINCE_FILE` holds.
    since_saved: BTreeMap<String, String>,
}

fn failed(message: String) -> Event {
    Event {
        reason: "Failed".into(),
        message,
        level: Level::Warn,
    }
}

impl Supervisor {
    /// A supervisor with nothing desired yet; log lines and drop reports
    /// go to `emit`.
    pub fn new(podman: Box<dyn Podman + Send>, settings: Settings, emit: Emit) -> Self {
        let backoff = settings.backoff.clone();
        let gate = LogGate::new(settings.log_limits, emit);
        let since_saved: BTreeMap<String, String> =
            std::fs::read(settings.dir.join(LOGS_SINCE_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        gate.restore(&since_saved);
        Self {
            gate,
            followers: BTreeMap::new(),
            since_saved,
            podman,
            settings,
            desired: Vec::new(),
            secrets: Secrets::new(),
            names: Vec::new(),
            deploys: backoff.clone(),
            restarts: backoff,
            reported: BTreeMap::new(),
            crashes_seen: BTreeSet::new(),
            states: Vec::new(),
            look_at_images: true,
        }
    }

    fn pods_dir(&self) -> PathBuf {
        self.settings.dir.join("pods")
    }

    /// The configuration's `workloads` and `secrets` changed (or were
    /// loaded at start). A workload whose entry changed is tried at once;
    /// every one is when a Secret changed.
    pub fn set_desired(&mut self, workloads: Vec<Value>, secrets: Secrets) {
        if secrets != self.secrets {
            for name in &self.names {
                self.deploys.forget(name);
                self.reported.remove(name);
            }
            self.secrets = secrets;
        }
        let old: BTreeMap<&str, &Value> = self
            .desired
            .iter()
            .filter_map(|w| Some((w.get("name")?.as_str()?, w)))
            .collect();
        for w in &workloads {
            let name = w.get("name").and_then(Value::as_str).unwrap_or_default();
            if old.get(name) != Some(&w) {
                self.deploys.forget(name);
                self.reported.remove(name);
            }
        }
        self.names = workloads
            .iter()
            .map(|w| {
                w.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        self.desired = workloads;
    }

    /// Each desired workload's phase after the last pass.
    pub fn states(&self) -> &[WorkloadState] {
        &self.states
    }

    /// Whether a pass has anything to do: workloads are desired, or play
    /// files show pods this agent made that may need removing.
    pub fn has_work(&self) -> bool {
        !self.desired.is_empty()
            || std::fs::read_dir(self.pods_dir()).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))
            })
    }

    /// The earliest time a held deployment or a restart becomes due.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let names = self.names.iter().map(String::as_str);
        let d = self.deploys.next_due(names.clone(), now);
        let r = self.restarts.next_due(names, now);
        d.into_iter().chain(r).min()
    }

    /// Report `message` for `name` unless it was the last one reported.
    fn report(&mut self, events: &mut Vec<Event>, name: &str, message: String) {
        if self.reported.get(name) != Some(&message) {
            self.reported.insert(name.to_owned(), message.clone());
            events.push(failed(message));
        }
    }

    /// One pass (module docs): the events to queue.
    pub fn pass(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.has_work() {
            self.states.clear();
            return events;
        }
        let pods_dir = self.pods_dir();
        if let Err(e) = std::fs::create_dir_all(&pods_dir) {
            let m = format!("workloads: {}: {e}", pods_dir.display());
            self.report(&mut events, "", m);
            return events;
        }
        if std::mem::take(&mut self.look_at_images) {
            events.extend(load_archives(
                self.podman.as_mut(),
                &self.settings.images_dir,
                &self.settings.dir,
            ));
        }
        let deploys = &self.deploys;
        let held = |name: &str| !deploys.is_due(name, now);
        let pass = match reconcile_holding(
            self.podman.as_mut(),
            &pods_dir,
            &self.desired,
            &self.secrets,
            self.settings.pulls_allowed,
            &held,
        ) {
            Ok(pass) => pass,
            Err(e) => {
                self.report(&mut events, "", format!("workloads: {e}"));
                self.states = phases(&self.names, &[], &[]);
                return events;
            }
        };
        self.reported.remove("");
        for name in pass.deployed.iter().chain(&pass.replaced) {
            self.deploys.forget(name);
            self.restarts.forget(name);
            self.reported.remove(name);
        }
        for name in &pass.removed {
            self.deploys.forget(name);
            self.restarts.forget(name);
            self.reported.remove(name);
            let _ = std::fs::remove_file(pods_dir.join(format!("{name}.json")));
        }
        for warning in &pass.warnings {
            // Keyed by its text: said once.
            self.report(&mut events, &format!("warning: {warning}"), warning.clone());
        }
        let failed_now: BTreeSet<&str> = pass.failed.iter().map(|(n, _)| n.as_str()).collect();
        self.look_at_images = !pass.failed.is_empty();
        for (name, why) in &pass.failed {
            if self.names.contains(name) {
                self.deploys.tried(name, now);
            }
            self.report(&mut events, name, format!("workload {name}: {why}"));
        }
        let (pods, mut containers) = match (self.podman.pods(), self.podman.containers()) {
            (Ok(p), Ok(c)) => (p, c),
            (Err(e), _) | (_, Err(e)) => {
                self.report(&mut events, "", format!("workloads: {e}"));
                self.states = phases(&self.names, &[], &[]);
                return events;
            }
        };
        let mut started = false;
        for name in self.names.clone() {
            let Some(policy) = pass.policies.get(&name).copied() else {
                continue;
            };
            if failed_now.contains(name.as_str()) {
                continue;
            }
            let mine: Vec<ObservedContainer> = containers
                .iter()
                .filter(|c| c.pod == name)
                .cloned()
                .collect();
            self.note_crashes(&mut events, &name, &mine, policy);
            if mine.is_empty() || !policy.wants_start(&mine) || !self.restarts.is_due(&name, now) {
                continue;
            }
            self.restarts.tried(&name, now);
            started = true;
            if let Err(e) = self.podman.start(&name) {
                self.report(&mut events, &name, format!("workload {name}: {e}"));
            }
        }
        if started && let Ok(c) = self.podman.containers() {
            containers = c;
        }
        let live: BTreeSet<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        self.crashes_seen.retain(|(c, _)| live.contains(c.as_str()));
        let names = &self.names;
        self.deploys.retain(|n| names.iter().any(|d| d == n));
        self.restarts.retain(|n| names.iter().any(|d| d == n));
        self.states = phases(&self.names, &pods, &containers);
        self.follow_logs(&mut events, &containers);
        events
    }

    /// Follow the logs of the running containers of workloads that name a
    /// `log_collection`; stop following the rest; report drops; keep the
    /// last line taken per container on disk.
    fn follow_logs(&mut self, events: &mut Vec<Event>, containers: &[ObservedContainer]) {
        let collected: BTreeSet<String> = self
            .desired
            .iter()
            .filter(|w| {
                w.get("log_collection")
                    .and_then(Value::as_str)
                    .is_some_and(|r| !r.is_empty())
            })
            .filter_map(|w| Some(w.get("name")?.as_str()?.to_owned()))
            .collect();
        self.followers.retain(|c, (w, f)| {
            !f.is_done()
                && collected.contains(w)
                && containers.iter().any(|o| &o.name == c && o.is_running())
        });
        for c in containers.iter().filter(|c| c.is_running()) {
            if !collected.contains(&c.pod) || self.followers.contains_key(&c.name) {
                continue;
            }
            let (gate, workload) = (self.gate.clone(), c.pod.clone());
            let sink = Arc::new(move |line: RawLine| gate.line(&workload, &line, Instant::now()));
            let since = self.gate.since(&c.name);
            match self.podman.follow_logs(&c.name, since.as_deref(), sink) {
                Ok(f) => {
                    self.followers.insert(c.name.clone(), (c.pod.clone(), f));
                }
                Err(e) => {
                    let key = format!("logs:{}", c.pod);
                    self.report(
                        events,
                        &key,
                        format!("workload {}: logs not collected: {e}", c.pod),
                    );
                }
            }
        }
        let live: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        self.gate.retain(&live, &self.names);
        self.gate.report_drops();
        let since = self.gate.snapshot();
        if since != self.since_saved {
            let path = self.settings.dir.join(LOGS_SINCE_FILE);
            let bytes = serde_json::to_vec(&since).unwrap_or_default();
            if crate::fsutil::write_atomic(&path, &bytes, 0o644).is_ok() {
                self.since_saved = since;
            }
        }
    }

    /// A `Failed` event for each container of `name` that crashed and was
    /// not reported yet.
    fn note_crashes(
        &mut self,
        events: &mut Vec<Event>,
        name: &str,
        containers: &[ObservedContainer],
        policy: RestartPolicy,
    ) {
        for c in containers.iter().filter(|c| c.has_crashed()) {
            if self.crashes_seen.insert((c.name.clone(), c.started_at)) {
                let next = match policy {
                    RestartPolicy::Never => "restartPolicy Never: it stays stopped",
                    _ => "it is started again after the back-off",
                };
                events.push(failed(format!(
                    "workload {name}: container {} exited with code {}; {next}",
                    c.name, c.exit_code
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests;
