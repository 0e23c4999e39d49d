//! The Quadlet path against a model systemd and a scripted podman (the
//! real ones: `tests/tests/quadlet_e2e.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::workloads::fake_podman;

/// A systemd that records its calls and fails the starts it is told to.
#[derive(Default)]
struct ModelSystemd {
    calls: Vec<String>,
    fail_start: Option<String>,
}

impl Systemd for &mut ModelSystemd {
    fn daemon_reload(&mut self) -> Result<(), String> {
        self.calls.push("daemon-reload".into());
        Ok(())
    }
    fn restart(&mut self, service: &str) -> Result<(), String> {
        self.calls.push(format!("restart {service}"));
        match &self.fail_start {
            Some(_) => Err(format!("Job for {service} failed")),
            None => Ok(()),
        }
    }
    fn stop(&mut self, service: &str) -> Result<(), String> {
        self.calls.push(format!("stop {service}"));
        Ok(())
    }
    fn why_failed(&mut self, _service: &str) -> String {
        self.fail_start.clone().unwrap_or_default()
    }
}

/// A podman that logs its arguments to `dir/podman.log`; `image exists`
/// says no.
fn podman(dir: &Path) -> PodmanCli {
    let log = dir.join("podman.log");
    let program = fake_podman(
        dir,
        &format!(
            "echo \"$*\" >> {log}\ncase \"$1 $2\" in \"image exists\") exit 1;; esac\nexit 0\n",
            log = log.display()
        ),
    );
    PodmanCli {
        program,
        play_args: vec![
            "--network".into(),
            "none".into(),
            "--tls-verify=false".into(),
        ],
        timeout: Duration::from_secs(30),
        log_max_bytes: 4096,
        ..PodmanCli::default()
    }
}

fn podman_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("podman.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn play_file(dir: &Path, pod: &str) -> PathBuf {
    let file = dir.join(format!("{pod}.json"));
    std::fs::write(
        &file,
        r#"{"kind":"Pod","spec":{"initContainers":[{"image":"reg/init:1"}],"containers":[{"image":"reg/app:2"}]}}
{"kind":"ConfigMap","data":{"image":"not-an-image"}}"#,
    )
    .unwrap();
    file
}

#[test]
fn a_play_writes_the_unit_reloads_and_starts_it() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let mut systemd = ModelSystemd::default();
    let mut q = Quadlet::new(podman(dir.path()), &mut systemd, units.clone());
    let file = play_file(dir.path(), "web");
    q.play(&file, None).unwrap();
    drop(q);
    let text = std::fs::read_to_string(units.join("flotta-web.kube")).unwrap();
    assert!(unit::is_ours(&text), "{text}");
    assert!(
        text.lines()
            .any(|l| l == format!("Yaml={}", file.display())),
        "{text}"
    );
    assert!(text.contains("PodmanArgs=--log-opt max-size=4096 --network none"));
    assert!(text.contains("TimeoutStartSec=30"));
    assert_eq!(
        systemd.calls,
        ["daemon-reload", "restart flotta-web.service"]
    );
    // No credentials: nothing pulled, podman not called at all.
    assert!(podman_calls(dir.path()).is_empty());
}

#[test]
fn a_failed_start_says_podmans_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut systemd = ModelSystemd {
        fail_start: Some("reg/app:2: image not known".into()),
        ..ModelSystemd::default()
    };
    let mut q = Quadlet::new(podman(dir.path()), &mut systemd, dir.path().join("units"));
    let err = q.play(&play_file(dir.path(), "web"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flotta-web.service: reg/app:2: image not known"
    );
    assert!(!err.is_retriable());
}

#[test]
fn credentials_pull_the_missing_images_first_and_stay_out_of_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let mut systemd = ModelSystemd::default();
    let mut q = Quadlet::new(podman(dir.path()), &mut systemd, units.clone());
    let auth = dir.path().join("web.auth.json");
    q.play(&play_file(dir.path(), "web"), Some(&auth)).unwrap();
    let calls = podman_calls(dir.path());
    let a = auth.display();
    assert_eq!(
        calls,
        [
            "image exists reg/app:2".to_owned(),
            format!("pull --quiet --authfile {a} --tls-verify=false reg/app:2"),
            "image exists reg/init:1".to_owned(),
            format!("pull --quiet --authfile {a} --tls-verify=false reg/init:1"),
        ]
    );
    let text = std::fs::read_to_string(units.join("flotta-web.kube")).unwrap();
    assert!(!text.contains("auth"), "{text}");
}

#[test]
fn remove_stops_the_unit_removes_it_and_the_pod() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let mut systemd = ModelSystemd::default();
    let mut q = Quadlet::new(podman(dir.path()), &mut systemd, units.clone());
    q.play(&play_file(dir.path(), "web"), None).unwrap();
    q.remove("web").unwrap();
    // A pod with no unit (made before Quadlet): podman alone.
    q.remove("old").unwrap();
    drop(q);
    assert!(!units.join("flotta-web.kube").exists());
    assert_eq!(
        systemd.calls,
        [
            "daemon-reload",
            "restart flotta-web.service",
            "stop flotta-web.service",
            "daemon-reload"
        ]
    );
    assert_eq!(
        podman_calls(dir.path()),
        [
            "pod rm --force --ignore --time 10 web",
            "pod rm --force --ignore --time 10 old"
        ]
    );
}

#[test]
fn only_our_units_of_undesired_workloads_are_retired() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    let mut systemd = ModelSystemd::default();
    let mut q = Quadlet::new(podman(dir.path()), &mut systemd, units.clone());
    for pod in ["kept", "gone"] {
        q.play(&play_file(dir.path(), pod), None).unwrap();
    }
    // The user's own units, one named like ours.
    std::fs::write(units.join("gone.kube"), "[Kube]\nYaml=/x.yaml\n").unwrap();
    std::fs::write(units.join("flotta-mine.kube"), "[Kube]\nYaml=/y.yaml\n").unwrap();
    let desired: BTreeSet<String> = ["kept".to_owned()].into();
    assert!(q.retire_except(&desired).is_empty());
    drop(q);
    let mut left: Vec<String> = std::fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["flotta-kept.kube", "flotta-mine.kube", "gone.kube"]);
    assert!(
        systemd
            .calls
            .contains(&"stop flotta-gone.service".to_owned())
    );
    assert!(!systemd.calls.iter().any(|c| c.contains("mine")));
}

#[test]
fn the_path_follows_podman_and_systemd() {
    let quadlet = |c: &Choice| matches!(c, Choice::Quadlet(_));
    assert!(quadlet(&choose(true, Ok((5, 4)), true, false)));
    assert!(quadlet(&choose(true, Ok((4, 4)), true, false)));
    assert!(quadlet(&choose(true, Ok((4, 9)), true, true)));
    for (wanted, version, booted, global, why) in [
        (
            true,
            Ok((4, 3)),
            true,
            false,
            "podman 4.3 has no Quadlet (since 4.4)",
        ),
        (
            true,
            Ok((4, 6)),
            true,
            true,
            "podman 4.6 has no Quadlet units with podman_args (since 4.8)",
        ),
        (
            true,
            Ok((5, 0)),
            false,
            false,
            "systemd does not run this machine",
        ),
        (
            false,
            Ok((5, 0)),
            true,
            false,
            "Quadlet units are turned off (workloads.quadlet)",
        ),
        (
            true,
            Err("cannot run podman".to_owned()),
            true,
            false,
            "podman's version is unknown: cannot run podman",
        ),
    ] {
        assert_eq!(
            choose(wanted, version, booted, global),
            Choice::KubePlay(why.into())
        );
    }
}

#[test]
fn images_are_read_from_the_pods_only() {
    let bytes =
        br#"{"kind":"Pod","spec":{"containers":[{"image":"a:1"},{"image":"b:2"},{"name":"x"}]}}
{"kind":"ConfigMap","spec":{"containers":[{"image":"c:3"}]}}
not json"#;
    let images: Vec<String> = images_in(bytes).into_iter().collect();
    assert_eq!(images, ["a:1", "b:2"]);
}
