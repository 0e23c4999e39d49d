//! Workloads as Quadlet `.kube` units (podman ≥ 4.4 on a machine systemd
//! runs): systemd starts them at boot, before the agent and without it.
//!
//! [`Quadlet`] is a [`Podman`] that deploys and removes pods through
//! systemd and leaves everything else (listing pods and containers,
//! restarts with the agent's back-off, secrets, logs, images) to podman,
//! so the reconciler, the plan and the supervisor are the same on both
//! paths:
//!
//! - play: the unit `flotta-POD.kube` is written (atomically, beside the
//!   user's own units) pointing at the play file the reconciler wrote,
//!   systemd reloaded, and `flotta-POD.service` (re)started: its
//!   `podman kube play --replace` makes the pod. A unit that fails says
//!   why with podman's `Error:` line from its journal. Registry
//!   credentials are never named in a unit (the auth file lives only for
//!   one deployment): the images are pulled with them first.
//! - remove: the service is stopped (its `kube down` removes the pod),
//!   the unit removed, systemd reloaded; then the pod is removed as on
//!   the other path, in case it outlived its unit.
//! - [`Podman::retire_except`]: units of ours for workloads no longer
//!   desired whose pod is already gone (a unit that failed at boot) go too.
//!
//! Which path a machine gets is [`choose`]'s decision.

mod systemd;
pub mod unit;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use systemd::{Systemctl, Systemd};
pub use unit::UnitSpec;

use super::containers::ObservedContainer;
use super::follow::Sink;
use super::plan::ObservedPod;
use super::podman::{Following, Podman, PodmanCli, PodmanError};
use super::secrets::ObservedSecret;

/// Where systemd's Quadlet generator reads system units.
pub const DEFAULT_UNITS_DIR: &str = "/etc/containers/systemd";

/// The oldest podman with Quadlet, and the oldest whose `.kube` units take
/// `GlobalArgs`.
const QUADLET_SINCE: (u32, u32) = (4, 4);
const GLOBAL_ARGS_SINCE: (u32, u32) = (4, 8);

/// How a machine runs its workloads, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Quadlet units (systemd starts the workloads at boot).
    Quadlet(String),
    /// `podman kube play` by the agent (the agent starts them at its start).
    KubePlay(String),
}

/// The path for a machine: Quadlet when `wanted`, podman is at least 4.4
/// (4.8 with `global_args`) and systemd runs the machine; else the agent
/// plays the pods itself.
pub fn choose(
    wanted: bool,
    podman: Result<(u32, u32), String>,
    systemd_booted: bool,
    global_args: bool,
) -> Choice {
    if !wanted {
        return Choice::KubePlay("Quadlet units are turned off (workloads.quadlet)".into());
    }
    let (major, minor) = match podman {
        Ok(v) => v,
        Err(why) => return Choice::KubePlay(format!("podman's version is unknown: {why}")),
    };
    let since = if global_args {
        GLOBAL_ARGS_SINCE
    } else {
        QUADLET_SINCE
    };
    if (major, minor) < since {
        let what = if global_args {
            "Quadlet units with podman_args"
        } else {
            "Quadlet"
        };
        return Choice::KubePlay(format!(
            "podman {major}.{minor} has no {what} (since {}.{})",
            since.0, since.1
        ));
    }
    if !systemd_booted {
        return Choice::KubePlay("systemd does not run this machine".into());
    }
    Choice::Quadlet(format!("podman {major}.{minor} and systemd"))
}

/// Whether systemd runs this machine (`sd_booted`).
pub fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// A [`Podman`] deploying through Quadlet units (module docs).
pub struct Quadlet<S> {
    podman: PodmanCli,
    systemd: S,
    units_dir: PathBuf,
    /// `TimeoutStartSec` of the units (a play may pull).
    start_timeout_seconds: u64,
}

impl<S: Systemd> Quadlet<S> {
    /// Units in `units_dir`, started through `systemd`, running `podman`.
    pub fn new(podman: PodmanCli, systemd: S, units_dir: PathBuf) -> Self {
        let start_timeout_seconds = podman.timeout.as_secs().max(1);
        Self {
            podman,
            systemd,
            units_dir,
            start_timeout_seconds,
        }
    }

    fn unit_path(&self, pod: &str) -> PathBuf {
        self.units_dir.join(unit::file_name(pod))
    }

    /// Whether the unit of `pod` is one of ours.
    fn has_unit(&self, pod: &str) -> bool {
        std::fs::read_to_string(self.unit_path(pod)).is_ok_and(|t| unit::is_ours(&t))
    }

    fn unit_error(pod: &str, why: impl std::fmt::Display) -> PodmanError {
        PodmanError::Unit {
            unit: unit::service(pod),
            why: why.to_string(),
        }
    }

    /// Stop `pod`'s service and remove its unit.
    fn retire(&mut self, pod: &str) -> Result<(), PodmanError> {
        let service = unit::service(pod);
        let stopped = self.systemd.stop(&service);
        let path = self.unit_path(pod);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Self::unit_error(pod, format!("{}: {e}", path.display()))),
        }
        self.systemd
            .daemon_reload()
            .map_err(|e| Self::unit_error(pod, e))?;
        stopped.map_err(|e| Self::unit_error(pod, e))
    }

    /// Pull the images of the play file `file` that are not here, with the
    /// registry credentials `auth`.
    fn pull_with(&mut self, file: &Path, auth: &Path) -> Result<(), PodmanError> {
        let bytes = std::fs::read(file).map_err(|source| PodmanError::Spawn {
            program: file.display().to_string(),
            source,
        })?;
        for image in images_in(&bytes) {
            if !self.podman.image_exists(&image)? {
                self.podman.pull(&image, auth)?;
            }
        }
        Ok(())
    }
}

/// The container images of the Pods in a play file (JSON documents).
fn images_in(bytes: &[u8]) -> BTreeSet<String> {
    let mut images = BTreeSet::new();
    for doc in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        let Ok(doc) = doc else { break };
        if doc["kind"] != "Pod" {
            continue;
        }
        for list in ["initContainers", "containers"] {
            let containers = doc["spec"][list].as_array().into_iter().flatten();
            images.extend(
                containers
                    .filter_map(|c| c["image"].as_str())
                    .map(str::to_owned),
            );
        }
    }
    images
}

impl<S: Systemd + Send> Podman for Quadlet<S> {
    fn pods(&mut self) -> Result<Vec<ObservedPod>, PodmanError> {
        self.podman.pods()
    }

    fn play(&mut self, file: &Path, auth_file: Option<&Path>) -> Result<(), PodmanError> {
        let pod = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(auth) = auth_file {
            self.pull_with(file, auth)?;
        }
        let play_file =
            std::path::absolute(file).map_err(|e| Self::unit_error(&pod, e.to_string()))?;
        let text = unit::render(&UnitSpec {
            pod: &pod,
            play_file: &play_file,
            global_args: &self.podman.global_args,
            play_args: &self.podman.play_args,
            log_max_bytes: self.podman.log_max_bytes,
            start_timeout_seconds: self.start_timeout_seconds,
        });
        std::fs::create_dir_all(&self.units_dir)
            .and_then(|()| {
                crate::fsutil::write_atomic(&self.unit_path(&pod), text.as_bytes(), 0o644)
            })
            .map_err(|e| Self::unit_error(&pod, format!("{}: {e}", self.units_dir.display())))?;
        self.systemd
            .daemon_reload()
            .map_err(|e| Self::unit_error(&pod, e))?;
        let service = unit::service(&pod);
        self.systemd.restart(&service).map_err(|e| {
            let why = self.systemd.why_failed(&service);
            Self::unit_error(&pod, if why.is_empty() { e } else { why })
        })
    }

    fn remove(&mut self, name: &str) -> Result<(), PodmanError> {
        let retired = if self.has_unit(name) {
            self.retire(name)
        } else {
            Ok(())
        };
        self.podman.remove(name)?;
        retired
    }

    fn retire_except(&mut self, desired: &BTreeSet<String>) -> Vec<(String, String)> {
        let Ok(entries) = std::fs::read_dir(&self.units_dir) else {
            return Vec::new();
        };
        let ours: Vec<String> = entries
            .flatten()
            .filter_map(|e| unit::pod_of(&e.file_name().to_string_lossy()).map(str::to_owned))
            .filter(|pod| !desired.contains(pod) && self.has_unit(pod))
            .collect();
        ours.into_iter()
            .filter_map(|pod| self.retire(&pod).err().map(|e| (pod, e.to_string())))
            .collect()
    }

    fn image_exists(&mut self, image: &str) -> Result<bool, PodmanError> {
        self.podman.image_exists(image)
    }

    fn containers(&mut self) -> Result<Vec<ObservedContainer>, PodmanError> {
        self.podman.containers()
    }

    fn start(&mut self, name: &str) -> Result<(), PodmanError> {
        self.podman.start(name)
    }

    fn load(&mut self, archive: &Path) -> Result<Vec<String>, PodmanError> {
        self.podman.load(archive)
    }

    fn secrets(&mut self) -> Result<Vec<ObservedSecret>, PodmanError> {
        self.podman.secrets()
    }

    fn create_secret(&mut self, name: &str, data: &[u8], hash: &str) -> Result<(), PodmanError> {
        self.podman.create_secret(name, data, hash)
    }

    fn remove_secret(&mut self, name: &str) -> Result<(), PodmanError> {
        self.podman.remove_secret(name)
    }

    fn version(&mut self) -> Result<(u32, u32), PodmanError> {
        self.podman.version()
    }

    fn follow_logs(
        &mut self,
        container: &str,
        since: Option<&str>,
        sink: Sink,
    ) -> Result<Box<dyn Following>, PodmanError> {
        self.podman.follow_logs(container, since, sink)
    }
}

#[cfg(test)]
mod tests;
