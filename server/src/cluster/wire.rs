//! Objects between the cluster and the controller, as pure functions: what
//! the server keeps of a cluster object (no `managedFields`), what it sends
//! (no server-owned metadata, no status), the merge patch between two
//! bodies (RFC 7386), and resource versions as numbers.

use serde_json::{Map, Value};

/// The finalizer on EdgeDevices of enrolled devices: deleting one in the
/// cluster decommissions its device before the object goes
/// (`super::finalizer`).
pub const FINALIZER: &str = "management.project-flotta.io/flotta-server";

/// Metadata the API server owns: never sent in a create or a patch.
const SERVER_METADATA: [&str; 7] = [
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
];

/// A cluster object as the server keeps it: `managedFields` dropped (large,
/// and nothing here reads them).
pub fn kept(mut body: Value) -> Value {
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    body
}

/// What the server sends of `body` in a create or patch: no status (the
/// status subresource carries it) and no server-owned metadata.
pub fn sendable(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in SERVER_METADATA {
                meta.remove(key);
            }
        }
    }
    body
}

/// `metadata.resourceVersion` as a number (etcd's revision), 0 when absent
/// or opaque: a number never orders before a watch event's.
pub fn resource_version(body: &Value) -> u64 {
    body.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether `body` is being deleted (has a `deletionTimestamp`).
pub fn deleting(body: &Value) -> bool {
    body.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// `metadata.finalizers` of `body`.
pub fn finalizers(body: &Value) -> Vec<String> {
    body.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `body` with [`FINALIZER`] in its finalizers (added last when missing).
pub fn with_finalizer(mut body: Value) -> Value {
    let mut list = finalizers(&body);
    if !list.iter().any(|f| f == FINALIZER) {
        list.push(FINALIZER.to_owned());
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("finalizers".into(), Value::from(list));
        }
    }
    body
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`: changed
/// and new members, `null` for removed ones; arrays and scalars whole.
/// `None` when they are equal.
pub fn merge_patch(from: &Value, to: &Value) -> Option<Value> {
    if from == to {
        return None;
    }
    let (Value::Object(a), Value::Object(b)) = (from, to) else {
        return Some(to.clone());
    };
    let mut patch = Map::new();
    for (key, old) in a {
        match b.get(key) {
            None => {
                patch.insert(key.clone(), Value::Null);
            }
            Some(new) => {
                if let Some(p) = merge_patch(old, new) {
                    patch.insert(key.clone(), p);
                }
            }
        }
    }
    for (key, new) in b {
        if !a.contains_key(key) {
            patch.insert(key.clone(), new.clone());
        }
    }
    Some(Value::Object(patch))
}

/// Apply an RFC 7386 merge patch (for tests of [`merge_patch`], and to
/// predict what a patch makes).
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (key, value) in p {
            if value.is_null() {
                t.remove(key);
            } else {
                apply_merge_patch(t.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn sendable_drops_status_and_server_metadata() {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "7",
                "creationTimestamp": "t", "labels": {"x": "y"}, "managedFields": []},
            "data": {"k": "v"}, "status": {"phase": "x"}});
        assert_eq!(
            sendable(&body),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "n", "labels": {"x": "y"}},
                "data": {"k": "v"}})
        );
        assert!(kept(body).pointer("/metadata/managedFields").is_none());
    }

    #[test]
    fn resource_versions_and_finalizers() {
        assert_eq!(
            resource_version(&json!({"metadata": {"resourceVersion": "42"}})),
            42
        );
        assert_eq!(
            resource_version(&json!({"metadata": {"resourceVersion": "x"}})),
            0
        );
        let b = with_finalizer(json!({"metadata": {"finalizers": ["other"]}}));
        assert_eq!(finalizers(&b), ["other", FINALIZER]);
        assert_eq!(with_finalizer(b.clone()), b);
        assert!(deleting(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
        ));
        assert!(!deleting(&json!({"metadata": {}})));
    }

    #[test]
    fn merge_patch_is_minimal() {
        let from = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        let to = json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"x": [1]}});
        assert_eq!(
            merge_patch(&from, &to),
            Some(json!({"metadata": {"labels": {"b": null, "c": "3"}}, "spec": {"x": [1]}}))
        );
        assert_eq!(merge_patch(&from, &from), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        // No nulls inside objects: RFC 7386 cannot set a member to null.
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::from),
            (0u8..4).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_merge_patch_turns_from_into_to(from in json_value(), to in json_value()) {
            let mut patched = from.clone();
            if let Some(p) = merge_patch(&from, &to) {
                apply_merge_patch(&mut patched, &p);
            }
            prop_assert_eq!(patched, to);
        }
    }
}
