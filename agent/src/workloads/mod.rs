//! Flotta EdgeWorkloads on the device, run with podman (issue #12).
//!
//! - [`plan`]: the pure decision of what to deploy, replace and remove so
//!   that podman's pods match the desired workloads, touching only pods
//!   this agent made;
//! - [`manifest`]: the file `podman kube play` runs for a workload;
//! - [`pods`], [`containers`]: what `podman pod ps` and `podman ps` say;
//! - [`podman`]: the runner behind the [`Podman`] trait;
//! - [`reconcile`]: one pass of the plan through podman;
//! - [`restart`]: restart policies and the back-off;
//! - [`status`]: phases in Flotta's terms for the heartbeat;
//! - [`images`]: image archives loaded offline-first;
//! - [`secrets`]: the configuration's Secrets as podman secrets;
//! - [`supervisor`]: all of that in one pass, with failures reported once;
//! - [`worker`]: the supervisor's thread; [`events`]: `podman events`;
//! - [`logs`], [`log_cap`]: workload logs into the queue, deduplicated
//!   and capped; [`tail`] follows a container's `k8s-file` log
//!   ([`ctr_log`]) by reading it, [`follow`] with `podman logs -f` where
//!   a container logs elsewhere.
//! - [`quadlet`]: deployments as Quadlet units that systemd starts at
//!   boot, where podman ≥ 4.4 and systemd run the machine.
//! - [`config`]: the `[workloads]` table.
//!
//! Measured podman 4.3.1 behaviour (names, labels, events, restarts, logs,
//! secrets) is in `PODMAN-4.3.md` beside this file.

use std::sync::Arc;

pub(crate) mod command;
pub mod config;
pub mod containers;
pub mod ctr_log;
pub mod events;
pub mod follow;
pub mod images;
pub mod log_cap;
pub mod logs;
pub mod manifest;
pub mod plan;
pub mod podman;
pub mod pods;
pub mod quadlet;
pub mod reconcile;
pub mod restart;
pub mod secrets;
pub mod status;
pub mod supervisor;
pub mod tail;
pub mod worker;

pub use config::WorkloadsConfig;
pub use manifest::{ManifestError, PlayFile, play_file};
pub use plan::{Action, DesiredWorkload, ObservedPod, Skipped, plan};
pub use podman::{Podman, PodmanCli, PodmanError};
pub use pods::{PodsError, decode_pod_ps};
pub use reconcile::{Pass, reconcile};
pub use supervisor::{Settings, Supervisor};
pub use worker::Workloads;

/// The supervisor for this configuration on its thread (following
/// podman's events once there is work), with the cached configuration
/// `message_json`; `None` when `[workloads] enabled = false`. `emit`
/// queues a record (events, workload log lines); `log` writes to the
/// agent's log.
pub fn spawn(
    cfg: &crate::config::AgentConfig,
    message_json: &str,
    emit: logs::Emit,
    log: worker::Log,
) -> std::io::Result<Option<Workloads>> {
    let w = &cfg.workloads;
    if !w.enabled {
        return Ok(None);
    }
    let s = std::time::Duration::from_secs;
    let settings = Settings {
        dir: cfg.data_dir.join("workloads"),
        images_dir: w.images_dir(&cfg.data_dir),
        pulls_allowed: w.pulls_allowed(&cfg.link_profile),
        backoff: restart::Backoff::new(
            s(w.restart_backoff_initial_seconds),
            s(w.restart_backoff_max_seconds),
            s(w.restart_backoff_reset_seconds),
        ),
        log_limits: log_cap::Limits {
            lines_per_second: w.log_lines_per_second,
            bytes_per_day: w.log_bytes_per_day,
        },
    };
    let cli = w.podman();
    let runner: Box<dyn Podman + Send> = match quadlet::choose(
        w.quadlet,
        cli.clone().version().map_err(|e| e.to_string()),
        quadlet::systemd_booted(),
        !w.podman_args.is_empty(),
    ) {
        quadlet::Choice::Quadlet(why) => {
            log(&format!(
                "workloads: Quadlet units in {} ({why}): systemd starts them at boot",
                w.quadlet_units_dir.display()
            ));
            Box::new(quadlet::Quadlet::new(
                cli.clone(),
                w.systemctl(),
                w.quadlet_units_dir.clone(),
            ))
        }
        quadlet::Choice::KubePlay(why) => {
            log(&format!(
                "workloads: played by the agent, which starts them at its start ({why})"
            ));
            Box::new(cli.clone())
        }
    };
    let supervisor = Supervisor::new(runner, settings, Arc::clone(&emit));
    Workloads::start(
        supervisor,
        message_json,
        s(w.monitoring_interval_seconds),
        emit,
        Some((cli, log)),
    )
    .map(Some)
}

#[cfg(test)]
/// An executable shell script `script` named `podman` in `dir`: a fake
/// podman for tests of the processes the agent runs.
pub(crate) fn fake_podman(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("podman");
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).expect("fake podman written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("fake podman executable");
    path
}
