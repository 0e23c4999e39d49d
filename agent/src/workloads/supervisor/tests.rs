//! The supervisor against a model of podman whose containers can crash:
//! restarts by policy with the back-off, failures reported once, retries
//! spaced out, phases, and no podman at all on a device without workloads.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotta_proto::payload::WorkloadPhase;
use serde_json::json;

use super::super::plan::{MANAGED_LABEL, ObservedPod, SPEC_HASH_LABEL};
use super::super::podman::PodmanError;
use super::*;

#[derive(Default)]
struct World {
    pods: BTreeMap<String, (ObservedPod, Vec<ObservedContainer>)>,
    images: BTreeSet<String>,
    calls: Vec<String>,
}

/// The model: shared, so a test can crash containers between passes.
#[derive(Clone, Default)]
struct Model(Arc<Mutex<World>>);

impl Model {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }
    fn crash(&self, pod: &str, code: i32) {
        let mut w = self.world();
        let c = &mut w.pods.get_mut(pod).unwrap().1[0];
        c.state = "exited".into();
        c.exit_code = code;
    }
    fn calls(&self, prefix: &str) -> usize {
        self.world()
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

impl Podman for Model {
    fn pods(&mut self) -> Result<Vec<ObservedPod>, PodmanError> {
        let mut w = self.world();
        w.calls.push("pods".into());
        Ok(w.pods.values().map(|(p, _)| p.clone()).collect())
    }
    fn play(&mut self, file: &Path, _auth: Option<&Path>) -> Result<(), PodmanError> {
        let text = std::fs::read_to_string(file).unwrap();
        let pod: Value = serde_json::from_str(text.split("\n---\n").next().unwrap()).unwrap();
        let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
        let labels = &pod["metadata"]["labels"];
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        let mut w = self.world();
        w.calls.push(format!("play {name}"));
        let observed = ObservedPod {
            name: name.clone(),
            managed: labels[MANAGED_LABEL] == "true",
            spec_hash: labels[SPEC_HASH_LABEL].as_str().map(str::to_owned),
            incomplete: false,
        };
        let container = ObservedContainer {
            pod: name.clone(),
            name: format!("{name}-app"),
            state: "running".into(),
            exit_code: 0,
            started_at: 1,
        };
        w.pods.insert(name, (observed, vec![container]));
        Ok(())
    }
    fn remove(&mut self, name: &str) -> Result<(), PodmanError> {
        let mut w = self.world();
        w.calls.push(format!("rm {name}"));
        w.pods.remove(name);
        Ok(())
    }
    fn image_exists(&mut self, image: &str) -> Result<bool, PodmanError> {
        Ok(self.world().images.contains(image))
    }
    fn containers(&mut self) -> Result<Vec<ObservedContainer>, PodmanError> {
        Ok(self
            .world()
            .pods
            .values()
            .flat_map(|(_, c)| c.clone())
            .collect())
    }
    fn start(&mut self, name: &str) -> Result<(), PodmanError> {
        let mut w = self.world();
        w.calls.push(format!("start {name}"));
        for c in &mut w.pods.get_mut(name).unwrap().1 {
            c.state = "running".into();
            c.exit_code = 0;
            c.started_at += 1;
        }
        Ok(())
    }
    fn load(&mut self, _archive: &Path) -> Result<Vec<String>, PodmanError> {
        Ok(Vec::new())
    }
}

const BB: &str = "localhost/busybox:test";

fn workload(name: &str, image: &str, policy: &str) -> Value {
    json!({
        "name": name,
        "specification": format!(
            "restartPolicy: {policy}\ncontainers:\n- name: app\n  image: {image}\n"),
    })
}

fn supervisor(dir: &Path) -> (Supervisor, Model) {
    let model = Model::default();
    model.world().images.insert(BB.into());
    let s = Duration::from_secs;
    let settings = Settings {
        dir: dir.join("workloads"),
        images_dir: dir.join("images"),
        pulls_allowed: false,
        backoff: Backoff::new(s(10), s(40), s(600)),
        log_limits: Limits {
            lines_per_second: 5,
            bytes_per_day: 1 << 20,
        },
    };
    let emit: Emit = Arc::new(|_| {});
    (
        Supervisor::new(Box::new(model.clone()), settings, emit),
        model,
    )
}

fn phases_of(s: &Supervisor) -> Vec<WorkloadPhase> {
    s.states().iter().map(|w| w.phase).collect()
}

#[test]
fn a_device_never_given_a_workload_never_runs_podman() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, model) = supervisor(dir.path());
    assert!(s.pass(Instant::now()).is_empty());
    s.set_desired(Vec::new(), Secrets::new());
    assert!(s.pass(Instant::now()).is_empty());
    assert!(model.world().calls.is_empty());
    assert!(s.states().is_empty());
}

#[test]
fn a_crash_is_reported_once_and_restarts_are_spaced_by_the_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, model) = supervisor(dir.path());
    let t0 = Instant::now();
    s.set_desired(vec![workload("web", BB, "Always")], Secrets::new());
    assert!(s.pass(t0).is_empty());
    assert_eq!(phases_of(&s), [WorkloadPhase::Running]);
    assert_eq!(model.calls("play"), 1);

    // First crash: reported, started again at once.
    model.crash("web", 3);
    let events = s.pass(t0 + Duration::from_secs(1));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, "Failed");
    assert!(
        events[0].message.contains("web-app exited with code 3"),
        "{events:?}"
    );
    assert_eq!(model.calls("start"), 1);
    assert_eq!(phases_of(&s), [WorkloadPhase::Running]);

    // Second crash 2 s later: reported, but the start waits 10 s.
    model.crash("web", 3);
    let t = t0 + Duration::from_secs(3);
    assert_eq!(s.pass(t).len(), 1);
    assert_eq!(model.calls("start"), 1);
    assert_eq!(phases_of(&s), [WorkloadPhase::Crashed]);
    // The same crash is not reported again.
    assert!(s.pass(t + Duration::from_secs(5)).is_empty());
    assert_eq!(s.next_due(t), Some(t0 + Duration::from_secs(11)));
    assert!(s.pass(t0 + Duration::from_secs(11)).is_empty());
    assert_eq!(model.calls("start"), 2);
    assert_eq!(phases_of(&s), [WorkloadPhase::Running]);
    // Nothing was redeployed for a crash.
    assert_eq!(model.calls("play"), 1);
}

#[test]
fn restart_policies_never_and_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, model) = supervisor(dir.path());
    let t0 = Instant::now();
    s.set_desired(
        vec![
            workload("job", BB, "Never"),
            workload("svc", BB, "OnFailure"),
        ],
        Secrets::new(),
    );
    s.pass(t0);
    model.crash("job", 1);
    model.crash("svc", 0);
    let events = s.pass(t0 + Duration::from_secs(1));
    assert_eq!(events.len(), 1);
    assert!(events[0].message.contains("it stays stopped"), "{events:?}");
    assert_eq!(model.calls("start"), 0);
    assert_eq!(
        phases_of(&s),
        [WorkloadPhase::Crashed, WorkloadPhase::Stopped]
    );
    model.crash("svc", 2);
    s.pass(t0 + Duration::from_secs(2));
    assert_eq!(
        model.world().calls.last().map(String::as_str),
        Some("start svc")
    );
}

#[test]
fn a_missing_image_is_reported_once_and_retried_with_the_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, model) = supervisor(dir.path());
    let t0 = Instant::now();
    s.set_desired(
        vec![workload("cam", "localhost/cam:1", "Always")],
        Secrets::new(),
    );
    let events = s.pass(t0);
    assert_eq!(events.len(), 1);
    assert!(
        events[0]
            .message
            .contains("image localhost/cam:1 not present; pulls disabled"),
        "{events:?}"
    );
    assert_eq!(phases_of(&s), [WorkloadPhase::Deploying]);
    // Held: no new try, no new event, until the back-off ends.
    let files = || {
        std::fs::read_dir(dir.path().join("workloads/pods"))
            .unwrap()
            .count()
    };
    assert!(s.pass(t0 + Duration::from_secs(5)).is_empty());
    assert_eq!(
        s.next_due(t0 + Duration::from_secs(5)),
        Some(t0 + Duration::from_secs(10))
    );
    // The image arrives (an archive loaded): the retry deploys it.
    model.world().images.insert("localhost/cam:1".into());
    assert!(s.pass(t0 + Duration::from_secs(10)).is_empty());
    assert_eq!(phases_of(&s), [WorkloadPhase::Running]);
    assert_eq!(model.calls("play"), 1);
    assert_eq!(files(), 1);

    // A new configuration is tried at once, even while one is held.
    s.set_desired(
        vec![workload("cam", "localhost/cam:2", "Always")],
        Secrets::new(),
    );
    assert_eq!(s.pass(t0 + Duration::from_secs(11)).len(), 1);
    s.set_desired(vec![workload("cam", BB, "Always")], Secrets::new());
    assert!(s.pass(t0 + Duration::from_secs(12)).is_empty());
    assert_eq!(model.calls("play"), 2);

    // Removed: pod and play file gone, and then podman is left alone.
    s.set_desired(Vec::new(), Secrets::new());
    s.pass(t0 + Duration::from_secs(13));
    assert!(model.world().pods.is_empty());
    assert_eq!(files(), 0);
    let calls = model.world().calls.len();
    s.pass(t0 + Duration::from_secs(14));
    assert_eq!(model.world().calls.len(), calls);
}
