//! The agent's workload reconciler against a real podman (a private
//! storage per test: `flotta_e2e::podman`): a Flotta workload with a
//! ConfigMap runs and sees the value; a second pass does nothing; a
//! changed specification replaces the pod once; a missing image on a link
//! that may not pull is a clear failure while the old pod runs on; a user's
//! own pod is never touched; a workload no longer desired is removed.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use flotta_agent::workloads::secrets::Secrets;
use flotta_agent::workloads::{Podman, reconcile};
use flotta_e2e::podman::{BUSYBOX_IMAGE, TestPodman};
use flotta_e2e::wait::wait_for;
use serde_json::{Value, json};

fn workload(name: &str, image: &str, tag: &str) -> Value {
    json!({
        "name": name,
        "specification": format!(
            "containers:\n- name: app\n  image: {image}\n  command: [sh, -c, 'echo $GREETING {tag}; exec sleep 600']\n  \
             env:\n  - name: GREETING\n    valueFrom:\n      configMapKeyRef:\n        name: greetings\n        key: greeting\n"
        ),
        "configmaps": ["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greetings\ndata:\n  greeting: hello-from-a-configmap\n"],
    })
}

/// The id of pod `name` (empty if none).
fn pod_id(p: &TestPodman, name: &str) -> String {
    let out = p.podman(&["pod", "inspect", "--format", "{{.Id}}", name]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn workloads_run_change_and_go_and_a_users_pod_is_never_touched() {
    let mut p = TestPodman::start();
    let files = p.files();
    // A user's own pod, on the same podman.
    p.ok(&["pod", "create", "--name", "users-own"]);

    let v1 = [workload("greeter", BUSYBOX_IMAGE, "v1")];
    let pass = reconcile(&mut p.cli, &files, &v1, &Secrets::new(), false).unwrap();
    assert_eq!(pass.deployed, ["greeter"], "{pass:?}");
    assert!(pass.failed.is_empty(), "{pass:?}");
    wait_for("the container's output", Duration::from_secs(30), || {
        String::from_utf8_lossy(&p.podman(&["logs", "greeter-app"]).stdout)
            .contains("hello-from-a-configmap v1")
    });
    let first = pod_id(&p, "greeter");

    // Nothing changed: nothing done.
    let before = p.ok(&["pod", "ps", "--format", "json"]);
    let pass = reconcile(&mut p.cli, &files, &v1, &Secrets::new(), false).unwrap();
    assert!(pass.is_noop(), "{pass:?}\n{before}");
    assert_eq!(pod_id(&p, "greeter"), first);

    // A new specification: the pod is made again, once.
    let v2 = [workload("greeter", BUSYBOX_IMAGE, "v2")];
    let pass = reconcile(&mut p.cli, &files, &v2, &Secrets::new(), false).unwrap();
    assert_eq!(pass.replaced, ["greeter"], "{pass:?}");
    let second = pod_id(&p, "greeter");
    assert_ne!(second, first);
    wait_for(
        "the new container's output",
        Duration::from_secs(30),
        || String::from_utf8_lossy(&p.podman(&["logs", "greeter-app"]).stdout).contains("v2"),
    );
    assert!(
        reconcile(&mut p.cli, &files, &v2, &Secrets::new(), false)
            .unwrap()
            .is_noop()
    );

    // An image that is not here, on a link that may not pull: a clear
    // failure, and the running pod runs on.
    let v3 = [workload("greeter", "registry.example.org/app:3", "v3")];
    let pass = reconcile(&mut p.cli, &files, &v3, &Secrets::new(), false).unwrap();
    assert_eq!(
        pass.failed,
        [(
            "greeter".to_owned(),
            "image registry.example.org/app:3 not present; pulls disabled on this link".to_owned()
        )]
    );
    assert_eq!(pod_id(&p, "greeter"), second);

    // No longer desired: removed; the user's pod stays.
    let pass = reconcile(&mut p.cli, &files, &[], &Secrets::new(), false).unwrap();
    assert_eq!(pass.removed, ["greeter"], "{pass:?}");
    let pods: Vec<String> = p.cli.pods().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(pods, ["users-own"]);
}

#[test]
fn a_play_podman_refuses_leaves_no_half_made_pod() {
    let mut p = TestPodman::start();
    let files = p.files();
    // Pulls allowed, but no registry is reachable: podman fails.
    let w = [json!({
        "name": "unpullable",
        "specification": "containers:\n- name: app\n  image: localhost/not-here:1\n  imagePullPolicy: Never\n",
    })];
    let pass = reconcile(&mut p.cli, &files, &w, &Secrets::new(), true).unwrap();
    assert_eq!(pass.failed.len(), 1, "{pass:?}");
    assert!(
        pass.failed[0].1.contains("image not known"),
        "podman's own message: {pass:?}"
    );
    assert!(p.cli.pods().unwrap().is_empty(), "a half-made pod was left");
}
