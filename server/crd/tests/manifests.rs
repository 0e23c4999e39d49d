//! The example manifests in `examples/` are what a Flotta user writes (or what
//! Flotta stores). They must:
//! - be valid against Flotta's reference CRDs (so they are genuine Flotta
//!   manifests) and against ours with nothing pruned (so they apply unchanged);
//! - parse into our types and serialise back without losing any field, adding
//!   only the defaults our CRD declares (which the API server adds anyway).

mod common;

use std::fmt::Debug;

use common::validate::validate;
use common::{examples, our_crd, reference_crd, root_schema};
use flotta_crd::kube::Resource;
use flotta_crd::{
    EdgeConfig, EdgeDevice, EdgeDeviceSet, EdgeDeviceSignedRequest, EdgeWorkload, PlaybookExecution,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn kind_of(manifest: &Value) -> &str {
    manifest["kind"].as_str().expect("manifest has a kind")
}

#[test]
fn every_kind_has_an_example() {
    let kinds: Vec<String> = examples()
        .iter()
        .map(|(_, manifest)| kind_of(manifest).to_owned())
        .collect();
    for kind in flotta_crd::all_crds()
        .iter()
        .map(|crd| &crd.spec.names.kind)
    {
        assert!(kinds.contains(kind), "no example of {kind}");
    }
    let workloads = examples_of("EdgeWorkload");
    assert!(
        workloads
            .iter()
            .any(|w| w["spec"]["deviceSelector"].is_object())
    );
    assert!(workloads.iter().any(|w| w["spec"]["device"].is_string()));
}

fn examples_of(kind: &str) -> Vec<Value> {
    examples()
        .into_iter()
        .filter(|(_, manifest)| kind_of(manifest) == kind)
        .map(|(_, manifest)| manifest)
        .collect()
}

fn example(file: &str) -> Value {
    examples()
        .into_iter()
        .find(|(name, _)| name == file)
        .unwrap_or_else(|| panic!("no example {file}"))
        .1
}

#[test]
fn examples_are_valid_flotta_manifests() {
    for (name, manifest) in examples() {
        let problems = validate(&manifest, root_schema(&reference_crd(kind_of(&manifest))));
        assert!(
            problems.is_empty(),
            "{name} against Flotta's CRD:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn examples_apply_unchanged_to_our_crds() {
    for (name, manifest) in examples() {
        let problems = validate(&manifest, root_schema(&our_crd(kind_of(&manifest))));
        assert!(
            problems.is_empty(),
            "{name} against our CRD:\n{}",
            problems.join("\n")
        );
    }
}

/// The validator must catch what the API server would reject or prune, or the
/// two tests above prove nothing.
#[test]
fn validator_reports_pruned_and_invalid_fields() {
    let mut manifest = example("edgedevice.yaml");
    manifest["spec"]["heartbeat"]["periodSeconds"] = 0.into();
    manifest["spec"]["heartbeat"]["bogus"] = true.into();
    manifest["spec"]["logCollection"]["syslog-central"]["kind"] = "journald".into();
    manifest["spec"]["mounts"][0]["device"] = 7.into();
    manifest["status"] = serde_json::json!({ "upgradeInformation": {} });
    let schema = our_crd("EdgeDevice");
    let mut problems: Vec<String> = validate(&manifest, root_schema(&schema))
        .into_iter()
        .map(|problem| problem.split(':').next().unwrap_or_default().to_owned())
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        [
            ".spec.heartbeat.bogus",
            ".spec.heartbeat.periodSeconds",
            ".spec.logCollection.syslog-central.kind",
            ".spec.mounts[0].device",
            ".status.upgradeInformation",
        ]
    );
}

#[test]
fn examples_round_trip_through_our_types_without_loss() {
    for (name, manifest) in examples() {
        let output = match kind_of(&manifest) {
            "EdgeDevice" => round_trip::<EdgeDevice>(&name, &manifest),
            "EdgeDeviceSet" => round_trip::<EdgeDeviceSet>(&name, &manifest),
            "EdgeWorkload" => round_trip::<EdgeWorkload>(&name, &manifest),
            "EdgeDeviceSignedRequest" => round_trip::<EdgeDeviceSignedRequest>(&name, &manifest),
            "EdgeConfig" => round_trip::<EdgeConfig>(&name, &manifest),
            "PlaybookExecution" => round_trip::<PlaybookExecution>(&name, &manifest),
            other => panic!("{name}: unexpected kind {other}"),
        };
        let mut lost = Vec::new();
        let mut added = Vec::new();
        diff(&manifest, &output, &mut Vec::new(), &mut lost, &mut added);
        assert!(
            lost.is_empty(),
            "{name}: lost or changed in the round trip: {lost:?}"
        );

        let crd = our_crd(kind_of(&manifest));
        for (path, value) in added {
            let default = schema_at(root_schema(&crd), &path).and_then(|s| s.get("default"));
            assert_eq!(
                default,
                Some(&value),
                "{name}: round trip added {} = {value}, which is not the schema default",
                path.join(".")
            );
        }
    }
}

/// Parses the manifest into `K` straight from YAML text and from JSON, checks
/// both agree and that serialising and parsing again is stable; returns the
/// serialised form.
fn round_trip<K>(name: &str, manifest: &Value) -> Value
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let yaml = serde_norway::to_string(manifest).expect("manifest serialises to YAML");
    let typed: K = serde_norway::from_str(&yaml).unwrap_or_else(|err| panic!("{name}: {err}"));
    let from_json: K = serde_json::from_value(manifest.clone()).expect("parses from JSON too");
    assert_eq!(typed, from_json, "{name}: YAML and JSON parse differently");
    assert_eq!(
        manifest["apiVersion"],
        K::api_version(&()).as_ref(),
        "{name}"
    );
    let output = serde_json::to_value(&typed).expect("serialises");
    let again: K = serde_json::from_value(output.clone()).expect("parses its own output");
    assert_eq!(again, typed, "{name}: second round trip differs");
    output
}

/// Records paths of `original` that `output` lost or changed, and paths
/// `output` has that `original` lacks (with their values).
fn diff(
    original: &Value,
    output: &Value,
    path: &mut Vec<String>,
    lost: &mut Vec<String>,
    added: &mut Vec<(Vec<String>, Value)>,
) {
    match (original, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                path.push(key.clone());
                match b.get(key) {
                    Some(other) => diff(value, other, path, lost, added),
                    None => lost.push(path.join(".")),
                }
                path.pop();
            }
            for (key, value) in b.iter().filter(|(key, _)| !a.contains_key(*key)) {
                let mut at = path.clone();
                at.push(key.clone());
                added.push((at, value.clone()));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                diff(x, y, path, lost, added);
                path.pop();
            }
        }
        (a, b) if a == b => {}
        (a, b) => lost.push(format!("{} ({a} became {b})", path.join("."))),
    }
}

/// The schema node at an object path (array indices step into `items`, unknown
/// keys into `additionalProperties`).
fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(schema, |node, segment| {
        if node["type"] == "array" {
            node.get("items")
        } else {
            node.get("properties")
                .and_then(|properties| properties.get(segment))
                .or_else(|| node.get("additionalProperties"))
        }
    })
}

/// `diff` must see losses, changes and additions, or the round-trip test
/// proves nothing.
#[test]
fn diff_reports_lost_changed_and_added_fields() {
    let original = example("edgeworkload-selector.yaml");
    let mut output = original.clone();
    output["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("logCollection");
    output["spec"]["pod"]["spec"]["containers"][0]["image"] = "other".into();
    output["spec"]["data"]["egress"]
        .as_array_mut()
        .expect("egress")
        .pop();
    output["spec"]["metrics"]["interval"] = 60.into();
    let (mut lost, mut added) = (Vec::new(), Vec::new());
    diff(&original, &output, &mut Vec::new(), &mut lost, &mut added);
    let lost: Vec<&str> = lost
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        lost,
        [
            "spec.data.egress",
            "spec.logCollection",
            "spec.pod.spec.containers.0.image"
        ]
    );
    let added: Vec<String> = added.iter().map(|(path, _)| path.join(".")).collect();
    assert_eq!(added, ["spec.metrics.interval"]);
}

#[test]
fn malformed_manifests_fail_with_the_field_path() {
    let cases = [
        (
            "spec:\n  heartbeat:\n    periodSeconds: ten\n",
            "spec.heartbeat.periodSeconds",
        ),
        (
            "spec:\n  logCollection:\n    a:\n      kind: journald\n",
            "spec.logCollection.a.kind",
        ),
        ("spec:\n  mounts: {}\n", "spec.mounts"),
    ];
    for (spec, path) in cases {
        let yaml = format!(
            "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeDevice\nmetadata:\n  name: d\n{spec}"
        );
        let err = serde_norway::from_str::<EdgeDevice>(&yaml)
            .expect_err(spec)
            .to_string();
        assert!(err.contains(path), "error {err:?} does not name {path}");
    }
    let missing = "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\nmetadata:\n  name: w\nspec:\n  device: d\n";
    let err = serde_norway::from_str::<EdgeWorkload>(missing).expect_err("type is required");
    assert!(err.to_string().contains("type"), "{err}");
}
