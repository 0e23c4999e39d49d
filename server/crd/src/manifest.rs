//! The CustomResourceDefinitions of all Flotta resources, as objects and as the
//! YAML stream `flotta-server crds | kubectl apply -f -` installs.
//!
//! kube-rs derives each CRD from our types; a few finishing touches then make it
//! match what Flotta's controller-gen output declares (see [`finish`]).

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::{
    EdgeConfig, EdgeDevice, EdgeDeviceSet, EdgeDeviceSignedRequest, EdgeWorkload, PlaybookExecution,
};

/// Every Flotta CRD, in a stable order (alphabetical by plural, like Flotta's
/// CRD files).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    [
        EdgeConfig::crd(),
        EdgeDevice::crd(),
        EdgeDeviceSet::crd(),
        EdgeDeviceSignedRequest::crd(),
        EdgeWorkload::crd(),
        PlaybookExecution::crd(),
    ]
    .into_iter()
    .map(finish)
    .collect()
}

/// [`all_crds`] as one multi-document YAML stream, each document introduced by
/// `---`.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        // A CRD is plain data: string-keyed maps, strings, numbers and booleans,
        // all of which YAML can represent, so this cannot fail.
        out.push_str(&serde_norway::to_string(&crd).expect("a CRD always serialises to YAML"));
    }
    out
}

/// What kube-rs leaves out and Flotta's CRDs have:
/// - `listKind`, which the API server would otherwise default to the same value;
/// - the `apiVersion`, `kind` and `metadata` properties of the root object;
/// - in the pod spec, the list and map merge markers Kubernetes declares and
///   k8s-openapi's schemas do not carry (server-side apply merges container ports
///   by `containerPort` and `protocol`), and the `TCP` default of port protocols
///   that makes `protocol` usable as a merge key.
///
/// It also drops the descriptions inside the pod spec. Kubernetes 1.33's pod
/// documentation would make the EdgeWorkload CRD larger than the 256 KiB that
/// `kubectl apply` can record in its last-applied annotation; they are the
/// standard pod field docs, which `kubectl explain pod.spec` still shows.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let names = &mut crd.spec.names;
    names.list_kind = Some(format!("{}List", names.kind));
    for version in &mut crd.spec.versions {
        let root = version
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut());
        if let Some(root) = root {
            add_object_meta_properties(root);
            if let Some(pod_spec) = property(root, &["spec", "pod", "spec"]) {
                mark_pod_spec(pod_spec);
                strip_nested_descriptions(pod_spec);
            }
        }
    }
    crd
}

fn add_object_meta_properties(root: &mut JSONSchemaProps) {
    let typed = |type_: &str, description: Option<&str>| JSONSchemaProps {
        type_: Some(type_.to_owned()),
        description: description.map(str::to_owned),
        ..JSONSchemaProps::default()
    };
    let properties = root.properties.get_or_insert_with(BTreeMap::new);
    properties.insert(
        "apiVersion".to_owned(),
        typed(
            "string",
            Some("Versioned schema of this object, e.g. management.project-flotta.io/v1alpha1."),
        ),
    );
    properties.insert(
        "kind".to_owned(),
        typed(
            "string",
            Some("REST resource kind of this object, in CamelCase."),
        ),
    );
    properties.insert("metadata".to_owned(), typed("object", None));
}

fn mark_pod_spec(pod_spec: &mut JSONSchemaProps) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let ports = property(pod_spec, &[list])
            .and_then(items)
            .and_then(|container| property(container, &["ports"]));
        if let Some(ports) = ports {
            list_map(ports, &["containerPort", "protocol"]);
            if let Some(protocol) = items(ports).and_then(|port| property(port, &["protocol"])) {
                protocol.default = Some(JSON(serde_json::Value::from("TCP")));
            }
        }
    }
    if let Some(constraints) = property(pod_spec, &["topologySpreadConstraints"]) {
        list_map(constraints, &["topologyKey", "whenUnsatisfiable"]);
    }
    if let Some(node_selector) = property(pod_spec, &["nodeSelector"]) {
        node_selector.x_kubernetes_map_type = Some("atomic".to_owned());
    }
}

/// Marks an array as a list of objects identified by the `keys` properties.
fn list_map(list: &mut JSONSchemaProps, keys: &[&str]) {
    list.x_kubernetes_list_type = Some("map".to_owned());
    list.x_kubernetes_list_map_keys = Some(keys.iter().map(|key| (*key).to_owned()).collect());
}

/// Removes the descriptions of everything below `schema` (not its own).
fn strip_nested_descriptions(schema: &mut JSONSchemaProps) {
    let mut children: Vec<&mut JSONSchemaProps> = Vec::new();
    if let Some(properties) = schema.properties.as_mut() {
        children.extend(properties.values_mut());
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => children.push(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => children.extend(items.iter_mut()),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_mut() {
        children.push(values);
    }
    for child in children {
        child.description = None;
        strip_nested_descriptions(child);
    }
}

/// The schema at `path` below `schema`, following `properties`.
fn property<'a>(schema: &'a mut JSONSchemaProps, path: &[&str]) -> Option<&'a mut JSONSchemaProps> {
    path.iter().try_fold(schema, |node, name| {
        node.properties.as_mut()?.get_mut(*name)
    })
}

/// The item schema of an array schema.
fn items(schema: &mut JSONSchemaProps) -> Option<&mut JSONSchemaProps> {
    match schema.items.as_mut()? {
        JSONSchemaPropsOrArray::Schema(item) => Some(item),
        JSONSchemaPropsOrArray::Schemas(_) => None,
    }
}
