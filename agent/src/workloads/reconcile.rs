//! One reconcile pass: the desired workloads (the configuration's
//! `workloads`), their play files, what podman has, the [`plan`], and the
//! plan carried out through a [`Podman`]. What went wrong is in the
//! [`Pass`], one message per workload, for `Failed` events; a failure
//! never stops the other workloads.
//!
//! - A workload whose new configuration cannot be played (a bad spec, a
//!   missing image the link may not pull) keeps its running pod: nothing
//!   is removed before its replacement can go.
//! - A `kube play` that fails leaves a half-made pod (`PODMAN-4.3.md`):
//!   it is removed at once, so the next pass starts clean.
//! - Play files are written to `dir/<name>.json` (replaced atomically)
//!   before podman reads them, and kept: they are what runs. A registry
//!   auth file is written beside it (mode 0600) only for the play that
//!   may pull, and removed after it.
//! - The Secrets a deployment reads are made (or made again, when their
//!   data changed) just before its play; those no pod needs any more are
//!   removed at the end of a pass that changed pods (`secrets.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::manifest::{PlayFile, play_file, valid_name};
use super::plan::{Action, DesiredWorkload, Skipped, plan};
use super::podman::{Podman, PodmanError};
use super::restart::RestartPolicy;
use super::secrets::{ObservedSecret, SecretAction, Secrets, action, data_hash};

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Workloads deployed (new pods).
    pub deployed: Vec<String>,
    /// Workloads whose pod was made again.
    pub replaced: Vec<String>,
    /// Pods removed (no longer desired).
    pub removed: Vec<String>,
    /// (workload, why) for each workload not brought to its desired state.
    pub failed: Vec<(String, String)>,
    /// The restart policy of each desired workload whose configuration
    /// was taken.
    pub policies: BTreeMap<String, RestartPolicy>,
    /// Trouble that is no workload's (a secret left behind).
    pub warnings: Vec<String>,
}

impl Pass {
    /// Nothing was done and nothing failed.
    pub fn is_noop(&self) -> bool {
        self.deployed.is_empty()
            && self.replaced.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
            && self.warnings.is_empty()
    }
}

/// Make podman's pods match `workloads` (module docs), which may
/// reference `secrets`. `pulls_allowed`: the link may pull images. Fails
/// only if podman cannot list its pods.
pub fn reconcile(
    podman: &mut dyn Podman,
    dir: &Path,
    workloads: &[Value],
    secrets: &Secrets,
    pulls_allowed: bool,
) -> Result<Pass, PodmanError> {
    reconcile_holding(podman, dir, workloads, secrets, pulls_allowed, &|_| false)
}

/// [`reconcile`], except that the workloads `held` says yes to are left as
/// they are (a failed deployment waiting for its retry): a pod of theirs
/// runs on, none is made.
pub fn reconcile_holding(
    podman: &mut dyn Podman,
    dir: &Path,
    workloads: &[Value],
    secrets: &Secrets,
    pulls_allowed: bool,
    held: &dyn Fn(&str) -> bool,
) -> Result<Pass, PodmanError> {
    let observed = podman.pods()?;
    let mut pass = Pass::default();
    let mut files: Vec<PlayFile> = Vec::new();
    let mut desired: Vec<DesiredWorkload> = Vec::new();
    // Secrets the pods to be kept or made read: not to be removed.
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    for w in workloads {
        match play_file(w, secrets, pulls_allowed) {
            Ok(f) if held(&f.name) => {
                pass.policies.insert(f.name.clone(), f.restart);
                in_use.extend(f.secrets.iter().cloned());
                keep_running(&f.name, &observed, &mut desired);
            }
            Ok(f) => {
                pass.policies.insert(f.name.clone(), f.restart);
                in_use.extend(f.secrets.iter().cloned());
                desired.push(DesiredWorkload {
                    name: f.name.clone(),
                    spec_hash: f.spec_hash.clone(),
                });
                files.push(f);
            }
            Err(e) => {
                let name = w.get("name").and_then(Value::as_str).unwrap_or_default();
                pass.failed.push((name.to_owned(), e.to_string()));
                keep_running(name, &observed, &mut desired);
            }
        }
    }
    let (actions, skipped) = plan(&desired, &observed);
    for Skipped::NameTaken(name) in skipped {
        pass.failed.push((
            name,
            "a pod of that name exists that flotta did not make; it is left alone".into(),
        ));
    }
    let any_refused = !pass.failed.is_empty();
    let mut podman_secrets = if actions.is_empty() {
        None
    } else {
        Some(SecretSync::new(podman, secrets))
    };
    for action in actions {
        match action {
            Action::Remove(name) => match podman.remove(&name) {
                Ok(()) => pass.removed.push(name),
                Err(e) => pass.failed.push((name, e.to_string())),
            },
            Action::Replace(w) | Action::Deploy(w) => {
                let replace = observed.iter().any(|p| p.name == w.name);
                let file = files
                    .iter()
                    .find(|f| f.name == w.name)
                    .expect("planned workloads have play files");
                let sync = podman_secrets
                    .as_mut()
                    .expect("made when there are actions");
                let ready = sync.ensure(podman, &file.secrets);
                match ready.and_then(|()| deploy(podman, dir, file, replace, pulls_allowed)) {
                    Ok(()) if replace => pass.replaced.push(w.name),
                    Ok(()) => pass.deployed.push(w.name),
                    Err(why) => pass.failed.push((w.name, why)),
                }
            }
        }
    }
    // Units for workloads no longer desired whose pods are already gone
    // (the Quadlet path only).
    let named: BTreeSet<String> = workloads
        .iter()
        .filter_map(|w| w.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    for (pod, why) in podman.retire_except(&named) {
        pass.warnings
            .push(format!("the unit of workload {pod} was not removed: {why}"));
    }
    // A workload whose configuration was refused may still run a pod
    // reading Secrets it no longer names: none is removed then.
    if let (Some(sync), false) = (podman_secrets, any_refused) {
        for (name, why) in sync.remove_unused(podman, &in_use) {
            pass.warnings.push(format!(
                "secret {name} is no longer used but was not removed: {why}"
            ));
        }
    }
    Ok(pass)
}

/// The podman secrets of one pass: listed once, made as deployments
/// need them (`secrets.rs`).
struct SecretSync<'a> {
    wanted: &'a Secrets,
    /// What podman has, or why it could not be listed.
    observed: Result<Vec<ObservedSecret>, String>,
    /// Secrets made or checked this pass.
    ready: BTreeSet<String>,
}

impl<'a> SecretSync<'a> {
    fn new(podman: &mut dyn Podman, wanted: &'a Secrets) -> Self {
        Self {
            wanted,
            observed: podman.secrets().map_err(|e| e.to_string()),
            ready: BTreeSet::new(),
        }
    }

    /// Make each of `names` hold its configured data.
    fn ensure(&mut self, podman: &mut dyn Podman, names: &[String]) -> Result<(), String> {
        for name in names {
            if self.ready.contains(name) {
                continue;
            }
            let observed = self.observed.as_ref().map_err(Clone::clone)?;
            let data = self
                .wanted
                .get(name)
                .ok_or_else(|| format!("Secret {name} {}", super::manifest::NOT_SENT))?;
            let hash = data_hash(data);
            match action(name, data, observed) {
                SecretAction::Keep => {}
                SecretAction::Foreign => {
                    return Err(format!(
                        "a podman secret {name} exists that flotta did not make; it is left alone"
                    ));
                }
                SecretAction::Replace => {
                    podman.remove_secret(name).map_err(|e| e.to_string())?;
                    podman
                        .create_secret(name, data.as_bytes(), &hash)
                        .map_err(|e| e.to_string())?;
                }
                SecretAction::Create => podman
                    .create_secret(name, data.as_bytes(), &hash)
                    .map_err(|e| e.to_string())?,
            }
            self.ready.insert(name.clone());
        }
        Ok(())
    }

    /// Remove the secrets this agent made that no pod in `in_use` needs:
    /// (secret, why) for each that could not be.
    fn remove_unused(
        self,
        podman: &mut dyn Podman,
        in_use: &BTreeSet<String>,
    ) -> Vec<(String, String)> {
        let Ok(observed) = self.observed else {
            return Vec::new();
        };
        observed
            .into_iter()
            .filter(|s| s.managed && !in_use.contains(&s.name))
            .filter_map(|s| {
                podman
                    .remove_secret(&s.name)
                    .err()
                    .map(|e| (s.name, e.to_string()))
            })
            .collect()
    }
}

/// A workload whose configuration was refused keeps its running pod: it
/// is desired as it is.
fn keep_running(
    name: &str,
    observed: &[super::plan::ObservedPod],
    desired: &mut Vec<DesiredWorkload>,
) {
    if !valid_name(name) {
        return;
    }
    if let Some(pod) = observed
        .iter()
        .find(|p| p.name == name && p.managed && !p.incomplete)
    {
        desired.push(DesiredWorkload {
            name: name.to_owned(),
            spec_hash: pod.spec_hash.clone().unwrap_or_default(),
        });
    }
}

/// Deploy `file` (after removing the pod it replaces); the reason if not.
fn deploy(
    podman: &mut dyn Podman,
    dir: &Path,
    file: &PlayFile,
    replace: bool,
    pulls_allowed: bool,
) -> Result<(), String> {
    if !pulls_allowed {
        for image in &file.images {
            if !podman.image_exists(image).map_err(|e| e.to_string())? {
                return Err(format!(
                    "image {image} not present; pulls disabled on this link"
                ));
            }
        }
    }
    if file.secret_volumes {
        let (major, minor) = podman.version().map_err(|e| e.to_string())?;
        if (major, minor) < (4, 4) {
            return Err(format!(
                "mounts a Secret as a volume, which podman {major}.{minor} cannot do (its kube play \
                 crashes; fixed in 4.4): use env valueFrom.secretKeyRef or envFrom.secretRef"
            ));
        }
    }
    let path = dir.join(format!("{}.json", file.name));
    crate::fsutil::write_atomic(&path, &file.bytes, 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Registry credentials only for as long as the play that may pull.
    let auth = match (&file.auth_file, pulls_allowed) {
        (Some(text), true) => {
            let auth = dir.join(format!("{}.auth.json", file.name));
            crate::fsutil::write_atomic(&auth, text.as_bytes(), 0o600)
                .map_err(|e| format!("{}: {e}", auth.display()))?;
            Some(auth)
        }
        _ => None,
    };
    let played = (|| {
        if replace {
            podman.remove(&file.name)?;
        }
        podman.play(&path, auth.as_deref())
    })();
    if let Some(auth) = &auth {
        let _ = std::fs::remove_file(auth);
    }
    if let Err(e) = played {
        // A failed play leaves a half-made pod behind.
        let _ = podman.remove(&file.name);
        return Err(e.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
