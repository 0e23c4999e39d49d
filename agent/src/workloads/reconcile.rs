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
//!   before podman reads them, and kept: they are what runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::manifest::{PlayFile, play_file, valid_name};
use super::plan::{Action, DesiredWorkload, Skipped, plan};
use super::podman::{Podman, PodmanError};
use super::restart::RestartPolicy;

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
}

impl Pass {
    /// Nothing was done and nothing failed.
    pub fn is_noop(&self) -> bool {
        self.deployed.is_empty()
            && self.replaced.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
    }
}

/// Make podman's pods match `workloads` (module docs). `pulls_allowed`:
/// the link may pull images. Fails only if podman cannot list its pods.
pub fn reconcile(
    podman: &mut dyn Podman,
    dir: &Path,
    workloads: &[Value],
    pulls_allowed: bool,
) -> Result<Pass, PodmanError> {
    reconcile_holding(podman, dir, workloads, pulls_allowed, &|_| false)
}

/// [`reconcile`], except that the workloads `held` says yes to are left as
/// they are (a failed deployment waiting for its retry): a pod of theirs
/// runs on, none is made.
pub fn reconcile_holding(
    podman: &mut dyn Podman,
    dir: &Path,
    workloads: &[Value],
    pulls_allowed: bool,
    held: &dyn Fn(&str) -> bool,
) -> Result<Pass, PodmanError> {
    let observed = podman.pods()?;
    let mut pass = Pass::default();
    let mut files: Vec<PlayFile> = Vec::new();
    let mut desired: Vec<DesiredWorkload> = Vec::new();
    for w in workloads {
        match play_file(w, pulls_allowed) {
            Ok(f) if held(&f.name) => {
                pass.policies.insert(f.name.clone(), f.restart);
                keep_running(&f.name, &observed, &mut desired);
            }
            Ok(f) => {
                pass.policies.insert(f.name.clone(), f.restart);
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
                match deploy(podman, dir, file, replace, pulls_allowed) {
                    Ok(()) if replace => pass.replaced.push(w.name),
                    Ok(()) => pass.deployed.push(w.name),
                    Err(why) => pass.failed.push((w.name, why)),
                }
            }
        }
    }
    Ok(pass)
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
    let path = dir.join(format!("{}.json", file.name));
    crate::fsutil::write_atomic(&path, &file.bytes, 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if replace {
        podman.remove(&file.name).map_err(|e| e.to_string())?;
    }
    if let Err(e) = podman.play(&path) {
        // A failed play leaves a half-made pod behind.
        let _ = podman.remove(&file.name);
        return Err(e.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
