//! Schema compatibility with Project Flotta's own CRDs.
//!
//! Each reference CRD (controller-gen output from Flotta's Go operator) is loaded
//! and compared with the CRD generated from our types: names, scope, version,
//! subresources and printer columns must be equal, and every property path of the
//! reference `openAPIV3Schema` must exist in ours with the same type, format,
//! enum, default, bounds and `required` list. Our own types may not add fields
//! Flotta lacks either. The few justified differences are listed in [`ALLOWED`].
//!
//! The reference CRDs are a copy of Flotta's, carried in
//! `tests/fixtures/flotta-crds` (origin and licence in its README;
//! `FLOTTA_REFERENCE_CRDS` points the tests at another directory; see
//! `common/mod.rs`).

mod common;

use std::collections::BTreeSet;

use common::{our_crd, reference_crd, reference_crds};
use flotta_crd::all_crds;
use serde_json::Value;

/// Differences from the reference that are deliberate: `(kind, path, finding)`.
/// A path (or finding) ending in `*` matches every path (finding) it is a prefix of.
const ALLOWED: &[(&str, &str, &str)] = &[
    // kube-rs makes `spec` required on every resource (its Rust type has a
    // non-optional spec). The Go operator always writes `spec`, and every Flotta
    // manifest has one.
    ("*", "", "ours requires spec"),
    // The pod spec comes from k8s-openapi (Kubernetes 1.33), newer than the one
    // Flotta's CRD was generated from. Kubernetes has since declared the `name` of
    // object references and the `ip` of host aliases required (a pod without them
    // never worked), and added fields (extra fields in the pod spec are not
    // findings).
    ("EdgeWorkload", ".spec.pod.spec*", "ours requires name"),
    // flotta's server writes the device's presence and the time it last heard
    // from it into the status (`get`/`describe` show them); declared so that
    // an API server does not prune them. Flotta's operator has neither.
    (
        "EdgeDevice",
        ".status.presence",
        "not in the reference schema",
    ),
    (
        "EdgeDevice",
        ".status.lastSeenTime",
        "not in the reference schema",
    ),
    // ... and the upload interval its agent reported.
    (
        "EdgeDevice",
        ".status.uploadIntervalSeconds",
        "not in the reference schema",
    ),
    // ... and the link it last used with its sealed-frame counters.
    ("EdgeDevice", ".status.link*", "not in the reference schema"),
    // ... and whether the ConfigMaps and Secrets a workload references exist.
    (
        "EdgeWorkload",
        ".status.conditions*",
        "not in the reference schema",
    ),
    (
        "EdgeWorkload",
        ".spec.pod.spec.hostAliases[]",
        "ours requires ip",
    ),
    // `kubectl get edgedevices` shows presence, phase and workloads (Flotta's
    // CRD has no printer columns): columns change no object.
    (
        "EdgeDevice",
        "spec.versions[]",
        "additionalPrinterColumns differs*",
    ),
];

/// One mismatch, by resource kind and property path.
struct Finding {
    kind: String,
    path: String,
    what: String,
}

impl Finding {
    fn allowed(&self) -> bool {
        ALLOWED.iter().any(|(kind, path, what)| {
            let path_matches = match path.strip_suffix('*') {
                Some(prefix) => self.path.starts_with(prefix),
                None => self.path == *path,
            };
            let what_matches = match what.strip_suffix('*') {
                Some(prefix) => self.what.starts_with(prefix),
                None => self.what == *what,
            };
            (*kind == "*" || *kind == self.kind) && path_matches && what_matches
        })
    }
}

struct Comparison {
    kind: String,
    findings: Vec<Finding>,
}

impl Comparison {
    fn report(&mut self, path: &str, what: String) {
        self.findings.push(Finding {
            kind: self.kind.clone(),
            path: path.to_owned(),
            what,
        });
    }

    fn equal(&mut self, path: &str, field: &str, theirs: &Value, ours: &Value) {
        if theirs != ours {
            self.report(
                path,
                format!("{field} differs: reference {theirs}, ours {ours}"),
            );
        }
    }

    /// Compares one schema node and recurses into its children.
    fn schema(&mut self, path: &str, theirs: &Value, ours: &Value) {
        let inside_pod_spec = path.starts_with(".spec.pod.spec");
        for key in [
            "type",
            "format",
            "x-kubernetes-int-or-string",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys",
            "x-kubernetes-map-type",
        ] {
            self.equal(path, key, &field(theirs, key), &field(ours, key));
        }
        for key in ["minimum", "maximum", "minItems"] {
            let number = |v: &Value| v.get(key).and_then(Value::as_f64);
            if number(theirs) != number(ours) {
                self.report(
                    path,
                    format!(
                        "{key} differs: reference {:?}, ours {:?}",
                        number(theirs),
                        number(ours)
                    ),
                );
            }
        }
        if theirs.get("default") != ours.get("default") {
            self.equal(
                path,
                "default",
                &field(theirs, "default"),
                &field(ours, "default"),
            );
        }
        if string_set(theirs, "enum") != string_set(ours, "enum") {
            self.equal(path, "enum", &field(theirs, "enum"), &field(ours, "enum"));
        }
        let (their_required, our_required) = (required(theirs), required(ours));
        for name in our_required.difference(&their_required) {
            self.report(path, format!("ours requires {name}"));
        }
        for name in their_required.difference(&our_required) {
            self.report(path, format!("reference requires {name}"));
        }

        let no_props = serde_json::Map::new();
        let their_props = theirs
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_props);
        let our_props = ours
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_props);
        for (name, their_child) in their_props {
            let child_path = format!("{path}.{name}");
            match our_props.get(name) {
                Some(our_child) => self.schema(&child_path, their_child, our_child),
                None => self.report(&child_path, "missing from our schema".to_owned()),
            }
        }
        if !inside_pod_spec {
            for name in our_props
                .keys()
                .filter(|name| !their_props.contains_key(*name))
            {
                self.report(
                    &format!("{path}.{name}"),
                    "not in the reference schema".to_owned(),
                );
            }
        }
        for (key, segment) in [("items", "[]"), ("additionalProperties", "{}")] {
            match (theirs.get(key), ours.get(key)) {
                (Some(t), Some(o)) => self.schema(&format!("{path}{segment}"), t, o),
                (None, None) => {}
                (t, o) => self.report(
                    path,
                    format!(
                        "{key} differs: reference has it: {}, ours: {}",
                        t.is_some(),
                        o.is_some()
                    ),
                ),
            }
        }
    }
}

fn field(value: &Value, key: &str) -> Value {
    value.get(key).cloned().unwrap_or(Value::Null)
}

fn string_set(value: &Value, key: &str) -> BTreeSet<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(Value::to_string).collect())
        .unwrap_or_default()
}

fn required(schema: &Value) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn compare(theirs: &Value, ours: &Value) -> Vec<Finding> {
    let kind = theirs["spec"]["names"]["kind"]
        .as_str()
        .expect("reference has a kind")
        .to_owned();
    let mut cmp = Comparison {
        kind,
        findings: Vec::new(),
    };
    cmp.equal(
        "metadata.name",
        "name",
        &theirs["metadata"]["name"],
        &ours["metadata"]["name"],
    );
    for key in ["group", "scope"] {
        cmp.equal("spec", key, &theirs["spec"][key], &ours["spec"][key]);
    }
    for key in [
        "kind",
        "listKind",
        "plural",
        "singular",
        "shortNames",
        "categories",
    ] {
        cmp.equal(
            "spec.names",
            key,
            &theirs["spec"]["names"][key],
            &ours["spec"]["names"][key],
        );
    }
    let their_versions = theirs["spec"]["versions"].as_array().expect("versions");
    let our_versions = ours["spec"]["versions"].as_array().expect("versions");
    cmp.equal(
        "spec.versions",
        "count",
        &their_versions.len().into(),
        &our_versions.len().into(),
    );
    for (theirs, ours) in their_versions.iter().zip(our_versions) {
        for key in [
            "name",
            "served",
            "storage",
            "subresources",
            "additionalPrinterColumns",
        ] {
            cmp.equal("spec.versions[]", key, &theirs[key], &ours[key]);
        }
        let schema = |v: &Value| v["schema"]["openAPIV3Schema"].clone();
        cmp.schema("", &schema(theirs), &schema(ours));
    }
    cmp.findings
}

#[test]
fn every_reference_crd_has_a_compatible_crd_of_ours() {
    let references = reference_crds();
    assert_eq!(
        references.len(),
        all_crds().len(),
        "one CRD of ours per reference CRD"
    );
    let mut unexpected = Vec::new();
    let mut allowed = 0;
    for theirs in &references {
        let kind = theirs["spec"]["names"]["kind"].as_str().expect("kind");
        for finding in compare(theirs, &our_crd(kind)) {
            if finding.allowed() {
                allowed += 1;
                eprintln!(
                    "allowed: {} {}: {}",
                    finding.kind, finding.path, finding.what
                );
            } else {
                unexpected.push(format!(
                    "{} {}: {}",
                    finding.kind, finding.path, finding.what
                ));
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} incompatibilities ({allowed} allowed ones not shown):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// The comparison itself must notice drift, or the test above proves nothing.
#[test]
fn comparison_reports_drift_in_our_schema() {
    let theirs = reference_crd("EdgeDevice");
    let mut ours = our_crd("EdgeDevice");
    let schema = &mut ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let spec = schema["spec"]["properties"]
        .as_object_mut()
        .expect("spec properties");
    spec.remove("heartbeat").expect("heartbeat present");
    spec.insert(
        "invented".to_owned(),
        serde_json::json!({ "type": "string" }),
    );
    schema["status"]["properties"]["phase"]["type"] = "integer".into();
    let disk = &mut schema["status"]["properties"]["hardware"]["properties"]["disks"];
    disk["items"]["properties"]["sizeBytes"]["format"] = "int32".into();
    let log = &mut schema["spec"]["properties"]["logCollection"]["additionalProperties"];
    log["properties"]["bufferSize"]["default"] = 13.into();
    log["properties"]["kind"]["enum"] = serde_json::json!(["syslog", "journald"]);
    log["required"] = serde_json::json!(["kind"]);
    ours["spec"]["names"]["plural"] = "edgedevice".into();
    ours["spec"]["versions"][0]["subresources"] = serde_json::json!({});

    let found: BTreeSet<String> = compare(&theirs, &ours)
        .into_iter()
        .filter(|finding| !finding.allowed())
        .map(|finding| {
            format!(
                "{} {}",
                finding.path,
                finding.what.split(':').next().unwrap_or("")
            )
        })
        .collect();
    let want: BTreeSet<String> = [
        ".spec.heartbeat missing from our schema",
        ".spec.invented not in the reference schema",
        ".status.phase type differs",
        ".status.hardware.disks[].sizeBytes format differs",
        ".spec.logCollection{}.bufferSize default differs",
        ".spec.logCollection{}.kind enum differs",
        ".spec.logCollection{} ours requires kind",
        "spec.names plural differs",
        "spec.versions[] subresources differs",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(found, want);
}
