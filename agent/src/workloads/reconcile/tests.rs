//! Reconcile passes against a model of podman (pods by name, local images,
//! plays that fail the way podman 4.3 fails: a half-made pod left behind).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::super::containers::ObservedContainer;
use super::super::plan::{MANAGED_LABEL, ObservedPod, SPEC_HASH_LABEL};
use super::*;

#[derive(Default)]
struct Model {
    pods: BTreeMap<String, ObservedPod>,
    images: BTreeSet<String>,
    fail_play: BTreeSet<String>,
    calls: Vec<String>,
}

fn failed(args: &str, stderr: &str) -> PodmanError {
    PodmanError::Failed {
        args: args.into(),
        status: "exit status: 125".into(),
        code: Some(125),
        stderr: stderr.into(),
    }
}

impl Podman for Model {
    fn pods(&mut self) -> Result<Vec<ObservedPod>, PodmanError> {
        Ok(self.pods.values().cloned().collect())
    }

    fn play(&mut self, file: &Path) -> Result<(), PodmanError> {
        let text = std::fs::read_to_string(file).unwrap();
        let pod: Value = serde_json::from_str(text.split("\n---\n").next().unwrap()).unwrap();
        let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
        self.calls.push(format!("play {name}"));
        if self.pods.contains_key(&name) {
            return Err(failed("kube play", "Error: pod already exists"));
        }
        let labels = &pod["metadata"]["labels"];
        let mut made = ObservedPod {
            name: name.clone(),
            managed: labels[MANAGED_LABEL] == "true",
            spec_hash: labels[SPEC_HASH_LABEL].as_str().map(str::to_owned),
            incomplete: false,
        };
        let missing = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| !self.images.contains(c["image"].as_str().unwrap()));
        if let Some(c) = missing.filter(|c| c["imagePullPolicy"] == "Never") {
            made.incomplete = true;
            self.pods.insert(name, made);
            return Err(failed(
                "kube play",
                &format!("Error: {}: image not known", c["image"]),
            ));
        }
        if self.fail_play.contains(&name) {
            made.incomplete = true;
            self.pods.insert(name, made);
            return Err(failed("kube play", "Error: starting container: boom"));
        }
        self.pods.insert(name, made);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), PodmanError> {
        self.calls.push(format!("rm {name}"));
        self.pods.remove(name);
        Ok(())
    }

    fn image_exists(&mut self, image: &str) -> Result<bool, PodmanError> {
        Ok(self.images.contains(image))
    }

    fn containers(&mut self) -> Result<Vec<ObservedContainer>, PodmanError> {
        Ok(self
            .pods
            .values()
            .filter(|p| !p.incomplete)
            .map(|p| ObservedContainer {
                pod: p.name.clone(),
                name: format!("{}-app", p.name),
                state: "running".into(),
                exit_code: 0,
                started_at: 0,
            })
            .collect())
    }

    fn start(&mut self, name: &str) -> Result<(), PodmanError> {
        self.calls.push(format!("start {name}"));
        Ok(())
    }

    fn load(&mut self, _archive: &Path) -> Result<Vec<String>, PodmanError> {
        Ok(Vec::new())
    }
}

fn workload(name: &str, image: &str, tag: &str) -> Value {
    json!({
        "name": name,
        "specification": format!("containers:\n- name: app\n  image: {image}\n  command: [sh, -c, 'echo {tag}']\n"),
    })
}

fn model() -> Model {
    Model {
        images: ["localhost/busybox:test".to_owned()].into(),
        ..Model::default()
    }
}

const BB: &str = "localhost/busybox:test";

#[test]
fn deploys_then_does_nothing_then_replaces_once_then_removes() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let v1 = [workload("a", BB, "1"), workload("b", BB, "1")];
    let pass = reconcile(&mut m, dir.path(), &v1, false).unwrap();
    assert_eq!(pass.deployed, ["a", "b"]);
    assert!(pass.failed.is_empty(), "{:?}", pass.failed);
    assert!(dir.path().join("a.json").exists());
    m.calls.clear();
    assert!(reconcile(&mut m, dir.path(), &v1, false).unwrap().is_noop());
    assert!(m.calls.is_empty(), "nothing redeployed: {:?}", m.calls);
    let v2 = [workload("a", BB, "2"), workload("b", BB, "1")];
    let pass = reconcile(&mut m, dir.path(), &v2, false).unwrap();
    assert_eq!(pass.replaced, ["a"]);
    assert_eq!(m.calls, ["rm a", "play a"]);
    let pass = reconcile(&mut m, dir.path(), &v2[1..], false).unwrap();
    assert_eq!(pass.removed, ["a"]);
    assert_eq!(m.pods.keys().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn a_users_pod_is_left_alone_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let mine = ObservedPod {
        name: "a".into(),
        managed: false,
        spec_hash: None,
        incomplete: false,
    };
    m.pods.insert("a".into(), mine.clone());
    let pass = reconcile(&mut m, dir.path(), &[workload("a", BB, "1")], false).unwrap();
    assert_eq!(m.pods["a"], mine);
    assert!(pass.failed[0].1.contains("flotta did not make"), "{pass:?}");
    // And not removed when nothing is desired.
    reconcile(&mut m, dir.path(), &[], false).unwrap();
    assert_eq!(m.pods["a"], mine);
}

#[test]
fn a_missing_image_on_a_narrow_link_is_a_clear_failure_and_the_old_pod_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    reconcile(&mut m, dir.path(), &[workload("a", BB, "1")], false).unwrap();
    let before = m.pods["a"].clone();
    m.calls.clear();
    let pass = reconcile(
        &mut m,
        dir.path(),
        &[workload("a", "example.org/app:2", "2")],
        false,
    )
    .unwrap();
    assert_eq!(
        pass.failed,
        [(
            "a".to_owned(),
            "image example.org/app:2 not present; pulls disabled on this link".to_owned()
        )]
    );
    assert_eq!(m.pods["a"], before, "the running pod stays");
    assert!(m.calls.is_empty(), "{:?}", m.calls);
}

#[test]
fn a_failed_play_leaves_no_half_made_pod_and_the_next_pass_tries_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    m.fail_play.insert("a".into());
    let pass = reconcile(&mut m, dir.path(), &[workload("a", BB, "1")], false).unwrap();
    assert!(pass.failed[0].1.contains("boom"), "{pass:?}");
    assert!(m.pods.is_empty(), "half-made pod removed: {:?}", m.pods);
    m.fail_play.clear();
    let pass = reconcile(&mut m, dir.path(), &[workload("a", BB, "1")], false).unwrap();
    assert_eq!(pass.deployed, ["a"]);
}

#[test]
fn a_refused_configuration_keeps_the_running_pod() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    reconcile(&mut m, dir.path(), &[workload("a", BB, "1")], false).unwrap();
    let before = m.pods["a"].clone();
    let bad = json!({"name": "a", "specification": "containers: ["});
    let pass = reconcile(&mut m, dir.path(), &[bad], false).unwrap();
    assert!(pass.failed[0].1.contains("not YAML"), "{pass:?}");
    assert_eq!(m.pods["a"], before);
}
