//! The play file from Flotta-shaped workloads: labels, pull policy,
//! ConfigMaps, the spec hash, and clear refusals.

use proptest::prelude::*;

use super::*;

/// As the server sends it (`controller/wire.rs`: the pod spec as YAML).
fn nginx() -> Value {
    json!({
        "name": "nginx",
        "namespace": "default",
        "labels": {"app": "web"},
        "specification": "containers:\n- name: nginx\n  image: docker.io/library/nginx:1.25\n  \
                          env:\n  - name: GREETING\n    valueFrom:\n      configMapKeyRef:\n        \
                          name: cm1\n        key: greeting\ninitContainers:\n- name: setup\n  \
                          image: localhost/busybox:test\nrestartPolicy: OnFailure\n",
        "configmaps": ["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\ndata:\n  greeting: hello\n"],
    })
}

fn documents(p: &PlayFile) -> Vec<Value> {
    std::str::from_utf8(&p.bytes)
        .unwrap()
        .split("\n---\n")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn a_pod_with_our_labels_then_its_configmaps() {
    let p = play_file(&nginx(), &Secrets::new(), true).unwrap();
    assert_eq!(p.name, "nginx");
    assert_eq!(p.spec_hash.len(), 64);
    assert_eq!(
        p.images,
        ["localhost/busybox:test", "docker.io/library/nginx:1.25"]
    );
    let docs = documents(&p);
    assert_eq!(docs.len(), 2);
    let pod = &docs[0];
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["name"], "nginx");
    assert_eq!(pod["metadata"]["labels"]["app"], "web");
    assert_eq!(pod["metadata"]["labels"][MANAGED_LABEL], "true");
    assert_eq!(
        pod["metadata"]["labels"][SPEC_HASH_LABEL],
        p.spec_hash.as_str()
    );
    // Podman restarts nothing; the agent does, as the workload asked.
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(p.restart, RestartPolicy::OnFailure);
    assert!(
        pod["spec"]["containers"][0]
            .get("imagePullPolicy")
            .is_none()
    );
    assert_eq!(docs[1]["kind"], "ConfigMap");
    assert_eq!(docs[1]["data"]["greeting"], "hello");
}

#[test]
fn without_pulls_every_container_never_pulls() {
    let p = play_file(&nginx(), &Secrets::new(), false).unwrap();
    let pod = &documents(&p)[0];
    for list in ["containers", "initContainers"] {
        assert_eq!(pod["spec"][list][0]["imagePullPolicy"], "Never", "{list}");
    }
    // The link does not change the hash: no redeploy when it changes.
    assert_eq!(
        p.spec_hash,
        play_file(&nginx(), &Secrets::new(), true)
            .unwrap()
            .spec_hash
    );
}

#[test]
fn the_hash_follows_what_the_server_sent_and_nothing_else() {
    let base = play_file(&nginx(), &Secrets::new(), true)
        .unwrap()
        .spec_hash;
    let mut w = nginx();
    w["namespace"] = "other".into();
    assert_eq!(
        play_file(&w, &Secrets::new(), true).unwrap().spec_hash,
        base,
        "namespace is not the pod"
    );
    for change in [
        |w: &mut Value| w["labels"]["app"] = "api".into(),
        |w: &mut Value| w["annotations"] = json!({"a": "b"}),
        |w: &mut Value| {
            w["configmaps"][0] = w["configmaps"][0]
                .as_str()
                .unwrap()
                .replace("hello", "bye")
                .into()
        },
        |w: &mut Value| {
            w["specification"] = w["specification"]
                .as_str()
                .unwrap()
                .replace("1.25", "1.26")
                .into()
        },
    ] {
        let mut w = nginx();
        change(&mut w);
        assert_ne!(
            play_file(&w, &Secrets::new(), true).unwrap().spec_hash,
            base,
            "{w}"
        );
    }
}

#[test]
fn bad_workloads_are_refused_clearly() {
    let mut w = nginx();
    w["name"] = "../etc".into();
    assert_eq!(
        play_file(&w, &Secrets::new(), true),
        Err(ManifestError::BadName("../etc".into()))
    );
    let mut w = nginx();
    w["specification"] = "containers: [".into();
    let e = play_file(&w, &Secrets::new(), true).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("workload nginx: specification is not YAML"),
        "{e}"
    );
    w["specification"] = "restartPolicy: Always\n".into();
    assert!(
        play_file(&w, &Secrets::new(), true)
            .unwrap_err()
            .to_string()
            .contains("has no containers")
    );
    let mut w = nginx();
    w["specification"] = "restartPolicy: Sometimes\ncontainers: [{name: a, image: b}]\n".into();
    let e = play_file(&w, &Secrets::new(), true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("restartPolicy \"Sometimes\" is not Always"),
        "{e}"
    );
    w["specification"] = "containers: [{name: a, image: b}]\n".into();
    assert_eq!(
        play_file(&w, &Secrets::new(), true).unwrap().restart,
        RestartPolicy::Always
    );
    let mut w = nginx();
    w["configmaps"][0] = "kind: Secret\n".into();
    assert_eq!(
        play_file(&w, &Secrets::new(), true),
        Err(ManifestError::BadConfigMap {
            name: "nginx".into(),
            index: 0,
            why: "is not of kind ConfigMap".into()
        })
    );
}

#[test]
fn names_are_dns_1123_labels() {
    for ok in ["a", "web-1", &"x".repeat(63)] {
        assert!(valid_name(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "A", "a.b", "a/b", "..", &"x".repeat(64)] {
        assert!(!valid_name(bad), "{bad}");
    }
}

proptest! {
    /// Whatever the specification text: a play file or a clear error,
    /// never a panic; a play file is JSON documents with our labels.
    #[test]
    fn any_specification_plays_or_is_refused(spec in ".{0,200}", pulls in any::<bool>()) {
        let w = json!({"name": "w", "specification": spec});
        if let Ok(p) = play_file(&w, &Secrets::new(), pulls) {
            let pod = &documents(&p)[0];
            prop_assert_eq!(&pod["metadata"]["labels"][MANAGED_LABEL], "true");
        }
    }
}
