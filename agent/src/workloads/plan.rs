//! What to do to make podman's pods match the desired workloads: a pure
//! function of the desired list and of what podman reports, so it can be
//! tested against any start state (`tests` below: a property test applies
//! plans to a model until it converges).
//!
//! Invariants:
//! - **Only pods this agent made are touched**: a pod is ours when it
//!   carries the [`MANAGED_LABEL`] label. A user's own pod is never
//!   removed or replaced, even when its name is a desired workload's
//!   (that workload is [`Skipped`] and reported instead).
//! - **Nothing is redeployed when nothing changed**: a pod of ours whose
//!   [`SPEC_HASH_LABEL`] equals the desired workload's hash is left alone,
//!   whatever its run state (restarts are the restart policy's business,
//!   not the plan's), unless it was left half made (a `kube play` that
//!   failed or was killed leaves a pod without its containers).
//! - Removals come first (they free names and resources), then
//!   replacements, then new deployments, each in name order, so a plan is
//!   deterministic.

use std::collections::BTreeMap;

/// The label marking pods this agent made.
pub const MANAGED_LABEL: &str = "io.flotta.agent/managed";
/// The label holding the hash of the workload specification a pod was made
/// from.
pub const SPEC_HASH_LABEL: &str = "io.flotta.agent/spec-hash";

/// A workload the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredWorkload {
    /// Its name (the pod's name).
    pub name: String,
    /// Hash of everything that makes the pod (specification, ConfigMaps,
    /// image settings).
    pub spec_hash: String,
}

/// A pod podman reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPod {
    /// The pod's name.
    pub name: String,
    /// Made by this agent ([`MANAGED_LABEL`]).
    pub managed: bool,
    /// Its [`SPEC_HASH_LABEL`], if any.
    pub spec_hash: Option<String>,
    /// Left half made: a `kube play` that failed or was interrupted
    /// (podman reports it `Created` without its app containers).
    pub incomplete: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Remove our pod: no longer desired.
    Remove(String),
    /// Remove our pod and deploy the workload again: its specification
    /// changed, or the pod was left half made.
    Replace(DesiredWorkload),
    /// Deploy a workload that has no pod.
    Deploy(DesiredWorkload),
}

/// A desired workload the plan will not deploy, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// A pod of that name exists that this agent did not make.
    NameTaken(String),
}

/// The actions that make `observed` match `desired` (module docs), and the
/// workloads that cannot be deployed. A name desired twice is deployed
/// once (the first).
pub fn plan(desired: &[DesiredWorkload], observed: &[ObservedPod]) -> (Vec<Action>, Vec<Skipped>) {
    let mut wanted: BTreeMap<&str, &DesiredWorkload> = BTreeMap::new();
    for d in desired {
        wanted.entry(d.name.as_str()).or_insert(d);
    }
    let pods: BTreeMap<&str, &ObservedPod> =
        observed.iter().map(|p| (p.name.as_str(), p)).collect();
    let (mut removes, mut replaces, mut deploys, mut skipped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, pod) in &pods {
        if pod.managed && !wanted.contains_key(name) {
            removes.push(Action::Remove((*name).to_owned()));
        }
    }
    for (name, want) in &wanted {
        match pods.get(name) {
            None => deploys.push(Action::Deploy((*want).clone())),
            Some(pod) if !pod.managed => skipped.push(Skipped::NameTaken((*name).to_owned())),
            Some(pod) if pod.incomplete || pod.spec_hash.as_deref() != Some(&want.spec_hash) => {
                replaces.push(Action::Replace((*want).clone()));
            }
            Some(_) => {}
        }
    }
    removes.extend(replaces);
    removes.extend(deploys);
    (removes, skipped)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn want(name: &str, hash: &str) -> DesiredWorkload {
        DesiredWorkload {
            name: name.into(),
            spec_hash: hash.into(),
        }
    }

    fn ours(name: &str, hash: &str) -> ObservedPod {
        ObservedPod {
            name: name.into(),
            managed: true,
            spec_hash: Some(hash.into()),
            incomplete: false,
        }
    }

    fn users(name: &str) -> ObservedPod {
        ObservedPod {
            name: name.into(),
            managed: false,
            spec_hash: None,
            incomplete: false,
        }
    }

    #[test]
    fn deploys_replaces_removes_and_leaves_the_rest() {
        let desired = [want("new", "1"), want("same", "2"), want("changed", "3")];
        let observed = [
            ours("same", "2"),
            ours("changed", "old"),
            ours("gone", "4"),
            users("mine"),
        ];
        let (actions, skipped) = plan(&desired, &observed);
        assert_eq!(
            actions,
            [
                Action::Remove("gone".into()),
                Action::Replace(want("changed", "3")),
                Action::Deploy(want("new", "1")),
            ]
        );
        assert!(skipped.is_empty());
    }

    #[test]
    fn a_users_pod_is_never_touched_even_under_a_desired_name() {
        let (actions, skipped) = plan(&[want("web", "1")], &[users("web"), users("db")]);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(skipped, [Skipped::NameTaken("web".into())]);
    }

    #[test]
    fn a_half_made_pod_is_made_again() {
        let mut pod = ours("web", "1");
        pod.incomplete = true;
        let (actions, _) = plan(&[want("web", "1")], &[pod]);
        assert_eq!(actions, [Action::Replace(want("web", "1"))]);
    }

    /// A random pod: a few names so they collide, ours or a user's.
    fn pod() -> impl Strategy<Value = ObservedPod> {
        (
            0..6u8,
            any::<bool>(),
            prop::option::of(0..3u8),
            any::<bool>(),
        )
            .prop_map(|(n, managed, hash, incomplete)| ObservedPod {
                name: format!("w{n}"),
                managed,
                spec_hash: hash.map(|h| h.to_string()),
                incomplete,
            })
    }

    fn desired() -> impl Strategy<Value = Vec<DesiredWorkload>> {
        prop::collection::vec(
            (0..6u8, 0..3u8).prop_map(|(n, h)| want(&format!("w{n}"), &h.to_string())),
            0..6,
        )
    }

    /// Apply `actions` to the model of podman's pods (one pod per name).
    fn apply(pods: &mut BTreeMap<String, ObservedPod>, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Remove(name) => {
                    assert!(
                        pods.remove(name).is_some_and(|p| p.managed),
                        "removed {name}"
                    );
                }
                Action::Replace(w) | Action::Deploy(w) => {
                    if let Action::Replace(_) = a {
                        assert!(
                            pods.get(&w.name).is_some_and(|p| p.managed),
                            "replaced {}",
                            w.name
                        );
                    } else {
                        assert!(!pods.contains_key(&w.name), "deployed over {}", w.name);
                    }
                    pods.insert(w.name.clone(), ours(&w.name, &w.spec_hash));
                }
            }
        }
    }

    proptest! {
        /// From any start, one plan reaches the desired set (but for names
        /// a user's pod holds), leaves every user's pod as it was, and the
        /// next plan is empty.
        #[test]
        fn one_plan_converges_and_the_next_is_empty(
            start in prop::collection::vec(pod(), 0..8),
            desired in desired(),
        ) {
            let mut pods: BTreeMap<String, ObservedPod> = BTreeMap::new();
            for p in start {
                pods.entry(p.name.clone()).or_insert(p);
            }
            let users_before: Vec<ObservedPod> =
                pods.values().filter(|p| !p.managed).cloned().collect();
            let observed: Vec<ObservedPod> = pods.values().cloned().collect();
            let (actions, skipped) = plan(&desired, &observed);
            apply(&mut pods, &actions);
            let users_after: Vec<ObservedPod> =
                pods.values().filter(|p| !p.managed).cloned().collect();
            prop_assert_eq!(users_before, users_after);
            let mut first: BTreeMap<&str, &str> = BTreeMap::new();
            for d in &desired {
                first.entry(d.name.as_str()).or_insert(d.spec_hash.as_str());
            }
            for (name, hash) in &first {
                let pod = &pods[*name];
                if pod.managed {
                    prop_assert_eq!(pod.spec_hash.as_deref(), Some(*hash));
                    prop_assert!(!pod.incomplete);
                } else {
                    prop_assert!(skipped.contains(&Skipped::NameTaken((*name).to_owned())));
                }
            }
            for pod in pods.values().filter(|p| p.managed) {
                prop_assert!(first.contains_key(pod.name.as_str()), "{} left", pod.name);
            }
            let observed: Vec<ObservedPod> = pods.values().cloned().collect();
            let (again, _) = plan(&desired, &observed);
            prop_assert!(again.is_empty(), "{:?}", again);
        }
    }
}
