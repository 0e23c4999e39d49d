//! Each desired workload's phase in Flotta's terms, from what podman
//! reports: the heartbeat's `workloads` (and so the EdgeDevice's
//! `status.workloads` and the WORKLOADS column of `get edgedevices`).
//!
//! - `deploying`: no complete pod yet (being made, or its deployment
//!   failed and waits for a retry; the `Failed` event says why);
//! - `crashed`: a container stopped with an error (whether or not it
//!   will be started again, and even if the others run);
//! - `running`: every container runs;
//! - `stopped`: nothing crashed and not everything runs (a finished
//!   container, a pod someone stopped).

use flotta_proto::payload::{WorkloadPhase, WorkloadState};

use super::containers::ObservedContainer;
use super::plan::ObservedPod;

/// The phase of each of `desired` (in their order), from `pods` and
/// their app `containers`.
pub fn phases(
    desired: &[String],
    pods: &[ObservedPod],
    containers: &[ObservedContainer],
) -> Vec<WorkloadState> {
    desired
        .iter()
        .map(|name| {
            let pod = pods
                .iter()
                .find(|p| &p.name == name && p.managed && !p.incomplete);
            let mine: Vec<&ObservedContainer> =
                containers.iter().filter(|c| &c.pod == name).collect();
            let phase = if pod.is_none() || mine.is_empty() {
                WorkloadPhase::Deploying
            } else if mine.iter().any(|c| c.has_crashed()) {
                WorkloadPhase::Crashed
            } else if mine.iter().all(|c| c.is_running()) {
                WorkloadPhase::Running
            } else {
                WorkloadPhase::Stopped
            };
            WorkloadState {
                name: name.clone(),
                phase,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, managed: bool, incomplete: bool) -> ObservedPod {
        ObservedPod {
            name: name.into(),
            managed,
            spec_hash: Some("h".into()),
            incomplete,
        }
    }

    fn c(pod: &str, state: &str, exit_code: i32) -> ObservedContainer {
        ObservedContainer {
            pod: pod.into(),
            name: format!("{pod}-{state}"),
            state: state.into(),
            exit_code,
            started_at: 0,
        }
    }

    #[test]
    fn phases_in_flottas_terms() {
        let desired: Vec<String> = ["run", "crash", "done", "half", "none", "users"]
            .map(String::from)
            .into();
        let pods = [
            pod("run", true, false),
            pod("crash", true, false),
            pod("done", true, false),
            pod("half", true, true),
            pod("users", false, false),
        ];
        let containers = [
            c("run", "running", 0),
            c("crash", "running", 0),
            c("crash", "exited", 1),
            c("done", "exited", 0),
            c("done", "running", 0),
            c("users", "running", 0),
        ];
        let got: Vec<(String, WorkloadPhase)> = phases(&desired, &pods, &containers)
            .into_iter()
            .map(|s| (s.name, s.phase))
            .collect();
        use WorkloadPhase::*;
        let want = [
            ("run", Running),
            ("crash", Crashed),
            ("done", Stopped),
            ("half", Deploying),
            ("none", Deploying),
            // A user's pod of that name is not the workload.
            ("users", Deploying),
        ]
        .map(|(n, p)| (n.to_owned(), p));
        assert_eq!(got, want);
    }
}
