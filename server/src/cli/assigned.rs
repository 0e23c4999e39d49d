//! The WORKLOADS column of `get edgedevices`: how many EdgeWorkloads the
//! controller places on a device (by the controller's own placement rules)
//! and how many the device reports running.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::controller::placement;
use crate::store::StoredObject;

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Workloads among `workloads` (EdgeWorkload objects, any namespace) placed
/// on `device` (an EdgeDevice object): same namespace, and `spec.device`
/// names it or `spec.deviceSelector` matches its labels.
pub(super) fn assigned(device: &Value, workloads: &[Value]) -> usize {
    let ns = text(device, "/metadata/namespace");
    let same_ns: Vec<StoredObject> = workloads
        .iter()
        .filter(|w| text(w, "/metadata/namespace") == ns)
        .map(|w| StoredObject {
            kind: "EdgeWorkload".into(),
            namespace: ns.to_owned(),
            name: text(w, "/metadata/name").to_owned(),
            body: w.clone(),
        })
        .collect();
    let labels: BTreeMap<String, String> = device
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    let candidates = placement::candidates(&same_ns, &[], &[]);
    placement::placed(text(device, "/metadata/name"), &labels, &candidates).len()
}

/// Reported workloads whose phase is `Running` (any case).
pub(super) fn running(device: &Value) -> usize {
    device
        .pointer("/status/workloads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|w| text(w, "/phase").eq_ignore_ascii_case("running"))
        .count()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn workload(name: &str, ns: &str, target: Value) -> Value {
        let mut spec =
            json!({"type": "pod", "pod": {"spec": {"containers": [{"name": "c", "image": "i"}]}}});
        for (k, v) in target.as_object().unwrap() {
            spec[k] = v.clone();
        }
        json!({"apiVersion": flotta_crd::API_VERSION, "kind": "EdgeWorkload",
            "metadata": {"name": name, "namespace": ns}, "spec": spec})
    }

    #[test]
    fn counts_placed_and_running_workloads() {
        let device = json!({"metadata": {"name": "dev-1", "namespace": "plant",
                "labels": {"site": "a"}},
            "status": {"workloads": [{"name": "w1", "phase": "Running"},
                {"name": "w2", "phase": "crashed"}, {"name": "old", "phase": "running"}]}});
        let workloads = [
            workload("w1", "plant", json!({"device": "dev-1"})),
            workload(
                "w2",
                "plant",
                json!({"deviceSelector": {"matchLabels": {"site": "a"}}}),
            ),
            workload(
                "w3",
                "plant",
                json!({"deviceSelector": {"matchLabels": {"site": "b"}}}),
            ),
            workload("w4", "other", json!({"device": "dev-1"})),
        ];
        assert_eq!(assigned(&device, &workloads), 2);
        assert_eq!(running(&device), 2);
    }
}
