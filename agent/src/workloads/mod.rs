//! Flotta EdgeWorkloads on the device, run with podman (issue #12, in
//! progress). This far: [`plan`], the pure decision of what to deploy,
//! replace and remove so that podman's pods match the desired workloads,
//! touching only pods this agent made; [`pods`], what `podman pod ps`
//! says about them; and [`manifest`], the file `podman kube play` runs for a
//! workload.
//!
//! Measured podman 4.3.1 behaviour (names, labels, events, restarts, logs,
//! secrets) is in `PODMAN-4.3.md` beside this file.
//!
//! Still to come (see ARCHITECTURE.md): the podman runner behind a small
//! trait (`kube play`, `pod rm`, `pod ps --format json`), the event stream
//! reader, restart back-off, images offline-first, status in heartbeats,
//! and workload logs through the queue.

pub mod manifest;
pub mod plan;
pub mod podman;
pub mod pods;
pub mod reconcile;

pub use manifest::{ManifestError, PlayFile, play_file};
pub use plan::{Action, DesiredWorkload, ObservedPod, Skipped, plan};
pub use podman::{Podman, PodmanCli, PodmanError};
pub use pods::{PodsError, decode_pod_ps};
pub use reconcile::{Pass, reconcile};
