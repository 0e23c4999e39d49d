//! Reconcile passes against a model of podman (pods by name, local images,
//! plays that fail the way podman 4.3 fails: a half-made pod left behind).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::super::containers::ObservedContainer;
use super::super::plan::{MANAGED_LABEL, ObservedPod, SPEC_HASH_LABEL};
use super::super::secrets::ObservedSecret;
use super::*;

#[derive(Default)]
struct Model {
    pods: BTreeMap<String, ObservedPod>,
    images: BTreeSet<String>,
    fail_play: BTreeSet<String>,
    calls: Vec<String>,
    /// name → (secret as `inspect` shows it, data).
    secrets: BTreeMap<String, (ObservedSecret, String)>,
    /// (major, minor); 4.3 unless a test says.
    version: Option<(u32, u32)>,
    /// The auth file each play was given, read while it played.
    auth_files: Vec<Option<String>>,
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

    fn play(&mut self, file: &Path, auth: Option<&Path>) -> Result<(), PodmanError> {
        let text = std::fs::read_to_string(file).unwrap();
        let pod: Value = serde_json::from_str(text.split("\n---\n").next().unwrap()).unwrap();
        let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
        self.calls.push(format!("play {name}"));
        self.auth_files
            .push(auth.map(|a| std::fs::read_to_string(a).unwrap()));
        let (wanted, _) = crate::workloads::secrets::referenced(&pod["spec"]);
        if let Some(gone) = wanted.iter().find(|n| !self.secrets.contains_key(*n)) {
            return Err(failed(
                "kube play",
                &format!("Error: no secret with name or id \"{gone}\": no such secret"),
            ));
        }
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

    fn secrets(&mut self) -> Result<Vec<ObservedSecret>, PodmanError> {
        Ok(self.secrets.values().map(|(s, _)| s.clone()).collect())
    }

    fn create_secret(&mut self, name: &str, data: &[u8], hash: &str) -> Result<(), PodmanError> {
        self.calls.push(format!("secret create {name}"));
        if self.secrets.contains_key(name) {
            return Err(failed("secret create", "Error: secret name in use"));
        }
        let observed = ObservedSecret {
            name: name.into(),
            managed: true,
            hash: Some(hash.into()),
        };
        let data = String::from_utf8(data.to_vec()).unwrap();
        self.secrets.insert(name.into(), (observed, data));
        Ok(())
    }

    fn remove_secret(&mut self, name: &str) -> Result<(), PodmanError> {
        self.calls.push(format!("secret rm {name}"));
        self.secrets
            .remove(name)
            .map(drop)
            .ok_or_else(|| failed("secret rm", "Error: no such secret"))
    }

    fn version(&mut self) -> Result<(u32, u32), PodmanError> {
        Ok(self.version.unwrap_or((4, 3)))
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

/// A pass over `workloads` referencing no Secret, on a link that may not pull.
fn plain(m: &mut Model, dir: &Path, workloads: &[Value]) -> Pass {
    reconcile(m, dir, workloads, &Secrets::new(), false).unwrap()
}

#[test]
fn deploys_then_does_nothing_then_replaces_once_then_removes() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let v1 = [workload("a", BB, "1"), workload("b", BB, "1")];
    let pass = plain(&mut m, dir.path(), &v1);
    assert_eq!(pass.deployed, ["a", "b"]);
    assert!(pass.failed.is_empty(), "{:?}", pass.failed);
    assert!(dir.path().join("a.json").exists());
    m.calls.clear();
    assert!(plain(&mut m, dir.path(), &v1).is_noop());
    assert!(m.calls.is_empty(), "nothing redeployed: {:?}", m.calls);
    let v2 = [workload("a", BB, "2"), workload("b", BB, "1")];
    let pass = plain(&mut m, dir.path(), &v2);
    assert_eq!(pass.replaced, ["a"]);
    assert_eq!(m.calls, ["rm a", "play a"]);
    let pass = plain(&mut m, dir.path(), &v2[1..]);
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
    let pass = plain(&mut m, dir.path(), &[workload("a", BB, "1")]);
    assert_eq!(m.pods["a"], mine);
    assert!(pass.failed[0].1.contains("flotta did not make"), "{pass:?}");
    // And not removed when nothing is desired.
    plain(&mut m, dir.path(), &[]);
    assert_eq!(m.pods["a"], mine);
}

#[test]
fn a_missing_image_on_a_narrow_link_is_a_clear_failure_and_the_old_pod_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    plain(&mut m, dir.path(), &[workload("a", BB, "1")]);
    let before = m.pods["a"].clone();
    m.calls.clear();
    let pass = plain(
        &mut m,
        dir.path(),
        &[workload("a", "example.org/app:2", "2")],
    );
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
    let pass = plain(&mut m, dir.path(), &[workload("a", BB, "1")]);
    assert!(pass.failed[0].1.contains("boom"), "{pass:?}");
    assert!(m.pods.is_empty(), "half-made pod removed: {:?}", m.pods);
    m.fail_play.clear();
    let pass = plain(&mut m, dir.path(), &[workload("a", BB, "1")]);
    assert_eq!(pass.deployed, ["a"]);
}

#[test]
fn a_refused_configuration_keeps_the_running_pod() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    plain(&mut m, dir.path(), &[workload("a", BB, "1")]);
    let before = m.pods["a"].clone();
    let bad = json!({"name": "a", "specification": "containers: ["});
    let pass = plain(&mut m, dir.path(), &[bad]);
    assert!(pass.failed[0].1.contains("not YAML"), "{pass:?}");
    assert_eq!(m.pods["a"], before);
}

/// A workload whose container reads the Secret `secret` as env `P`.
fn reading(name: &str, secret: &str) -> Value {
    json!({
        "name": name,
        "specification": format!("containers:\n- name: app\n  image: {BB}\n  env:\n  - name: P\n    valueFrom:\n      secretKeyRef: {{name: {secret}, key: p}}\n"),
    })
}

fn secrets(pairs: &[(&str, &str)]) -> Secrets {
    pairs
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
        .collect()
}

#[test]
fn a_secret_is_made_before_its_pod_replaced_with_it_and_removed_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let v1 = secrets(&[("db", r#"{"p":"b2xk"}"#), ("unused", "{}")]);
    let w = [reading("a", "db")];
    let pass = reconcile(&mut m, dir.path(), &w, &v1, false).unwrap();
    assert_eq!(pass.deployed, ["a"], "{pass:?}");
    assert_eq!(
        m.calls,
        ["secret create db", "play a"],
        "only what a pod reads"
    );
    assert_eq!(m.secrets["db"].1, r#"{"p":"b2xk"}"#, "the data as sent");
    let hash1 = m.pods["a"].spec_hash.clone();
    let file = std::fs::read_to_string(dir.path().join("a.json")).unwrap();
    assert!(!file.contains("b2xk"), "no secret in the play file: {file}");
    m.calls.clear();
    assert!(
        reconcile(&mut m, dir.path(), &w, &v1, false)
            .unwrap()
            .is_noop()
    );
    assert!(
        m.calls.is_empty(),
        "unchanged: no podman call: {:?}",
        m.calls
    );
    let v2 = secrets(&[("db", r#"{"p":"bjN3"}"#)]);
    let pass = reconcile(&mut m, dir.path(), &w, &v2, false).unwrap();
    assert_eq!(pass.replaced, ["a"], "a changed Secret replaces its pod");
    assert_eq!(
        m.calls,
        ["secret rm db", "secret create db", "rm a", "play a"]
    );
    assert_eq!(m.secrets["db"].1, r#"{"p":"bjN3"}"#);
    assert_ne!(m.pods["a"].spec_hash, hash1);
    m.calls.clear();
    let pass = plain(&mut m, dir.path(), &[]);
    assert_eq!(pass.removed, ["a"]);
    assert_eq!(
        m.calls,
        ["rm a", "secret rm db"],
        "the pod, then its secret"
    );
    assert!(m.secrets.is_empty());
}

#[test]
fn a_users_secret_is_never_touched_and_a_missing_one_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let users = ObservedSecret {
        name: "db".into(),
        managed: false,
        hash: None,
    };
    m.secrets
        .insert("db".into(), (users.clone(), "mine".into()));
    let v = secrets(&[("db", r#"{"p":"eA=="}"#)]);
    let pass = reconcile(&mut m, dir.path(), &[reading("a", "db")], &v, false).unwrap();
    assert!(pass.failed[0].1.contains("flotta did not make"), "{pass:?}");
    assert!(m.pods.is_empty());
    assert_eq!(m.secrets["db"], (users, "mine".to_owned()));
    let pass = reconcile(&mut m, dir.path(), &[reading("b", "gone")], &v, false).unwrap();
    assert_eq!(
        pass.failed,
        [(
            "b".to_owned(),
            format!(
                "workload b: Secret gone {}",
                super::super::manifest::NOT_SENT
            )
        )]
    );
    assert!(
        !m.calls.iter().any(|c| c.contains("play b")),
        "{:?}",
        m.calls
    );
    // Nothing of ours to remove, and the user's stays.
    plain(&mut m, dir.path(), &[]);
    assert!(m.secrets.contains_key("db"));
}

#[test]
fn secret_volumes_are_refused_on_podman_4_3_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let w = json!({"name": "a", "specification": format!(
        "containers:\n- name: app\n  image: {BB}\nvolumes:\n- name: v\n  secret: {{secretName: db}}\n")});
    let v = secrets(&[("db", "{}")]);
    let pass = reconcile(&mut m, dir.path(), std::slice::from_ref(&w), &v, false).unwrap();
    let why = &pass.failed[0].1;
    assert!(
        why.contains("podman 4.3 cannot do") && why.contains("envFrom.secretRef"),
        "{why}"
    );
    assert!(
        !m.calls.iter().any(|c| c.starts_with("play")),
        "{:?}",
        m.calls
    );
    m.version = Some((4, 4));
    let pass = reconcile(&mut m, dir.path(), &[w], &v, false).unwrap();
    assert_eq!(pass.deployed, ["a"], "{pass:?}");
}

#[test]
fn the_registry_auth_file_is_given_only_to_a_play_that_may_pull_and_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    let auth = r#"{"auths":{"registry.example":{"auth":"dTpw"}}}"#;
    let mut w = workload("a", BB, "1");
    w["imageRegistries"] = json!({ "authFile": auth });
    reconcile(
        &mut m,
        dir.path(),
        std::slice::from_ref(&w),
        &Secrets::new(),
        true,
    )
    .unwrap();
    assert_eq!(m.auth_files, [Some(auth.to_owned())]);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, ["a.json"], "no credentials left on disk");
    // A new auth file replaces the pod; on a narrow link none is given.
    w["imageRegistries"]["authFile"] = json!(auth.replace("dTpw", "dTpx"));
    let pass = plain(&mut m, dir.path(), &[w]);
    assert_eq!(pass.replaced, ["a"]);
    assert_eq!(m.auth_files[1], None);
}
