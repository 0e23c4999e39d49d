//! `crds_yaml()` is what `flotta-server crds | kubectl apply -f -` installs: it
//! must be a stream of every CRD, each document parsing back to the same object.

use flotta_crd::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use flotta_crd::{all_crds, crds_yaml};
use serde::Deserialize;

#[test]
fn yaml_stream_holds_every_crd_unchanged() {
    let yaml = crds_yaml();
    assert!(yaml.starts_with("---\n"));
    let parsed: Vec<CustomResourceDefinition> = serde_norway::Deserializer::from_str(&yaml)
        .map(|document| {
            CustomResourceDefinition::deserialize(document).expect("valid CRD document")
        })
        .collect();
    assert_eq!(parsed, all_crds());
    assert_eq!(yaml.matches("\n---\n").count() + 1, parsed.len());
}

#[test]
fn crds_cover_flottas_resources_once_each() {
    let crds = all_crds();
    let names: Vec<&str> = crds
        .iter()
        .filter_map(|crd| crd.metadata.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            "edgeconfigs.management.project-flotta.io",
            "edgedevices.management.project-flotta.io",
            "edgedevicesets.management.project-flotta.io",
            "edgedevicesignedrequest.management.project-flotta.io",
            "edgeworkloads.management.project-flotta.io",
            "playbookexecutions.management.project-flotta.io",
        ]
    );
    for crd in &crds {
        assert_eq!(crd.spec.group, flotta_crd::GROUP);
        let versions: Vec<&str> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(versions, [flotta_crd::VERSION]);
        assert_eq!(
            crd.spec.names.list_kind.as_deref(),
            Some(format!("{}List", crd.spec.names.kind).as_str())
        );
    }
}

/// `kubectl apply` (client side) stores the whole object in the
/// `kubectl.kubernetes.io/last-applied-configuration` annotation, and the API
/// server caps annotations at 256 KiB: a larger CRD cannot be applied that way.
#[test]
fn every_crd_fits_in_a_last_applied_annotation() {
    const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;
    for crd in all_crds() {
        let json = serde_json::to_string(&crd).expect("CRD serialises");
        assert!(
            json.len() < MAX_ANNOTATIONS_BYTES,
            "{:?} is {} bytes as JSON",
            crd.metadata.name,
            json.len()
        );
    }
}
