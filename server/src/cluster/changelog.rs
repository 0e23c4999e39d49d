//! Which mirrored objects changed, for the incremental controller pass
//! ([`crate::objects::ObjectSource::object_changes`]): every mirror notes a
//! key under one counter shared by all kinds when its object appears, goes,
//! or changes outside what does not matter to a pass (`status`, which the
//! controller writes, and the resource version every write moves).
//!
//! A number is taken and its key noted under the mirror's lock, so a reader
//! that first reads the counter and then each mirror (under its lock) finds
//! every change numbered up to what it read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// (namespace, name).
pub(super) type Key = (String, String);

/// One mirror's changes, numbered from the shared counter.
#[derive(Debug, Default)]
pub(super) struct ChangeLog {
    counter: Arc<AtomicU64>,
    by_number: BTreeMap<u64, Key>,
    number_of: HashMap<Key, u64>,
}

impl ChangeLog {
    /// A log numbering from `counter`.
    pub(super) fn new(counter: Arc<AtomicU64>) -> Self {
        Self {
            counter,
            ..Self::default()
        }
    }

    /// Note that `key` changed now (its older number is forgotten).
    pub(super) fn note(&mut self, key: &Key) {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(old) = self.number_of.insert(key.clone(), n) {
            self.by_number.remove(&old);
        }
        self.by_number.insert(n, key.clone());
    }

    /// Note `key` when its object changed in a way a pass may read.
    pub(super) fn note_if_changed(&mut self, key: &Key, old: Option<&Value>, new: Option<&Value>) {
        if inputs(old) != inputs(new) {
            self.note(key);
        }
    }

    /// Keys noted with a number in `(after, upto]`.
    pub(super) fn between(&self, after: u64, upto: u64) -> Vec<Key> {
        if after >= upto {
            return Vec::new();
        }
        self.by_number
            .range(after + 1..=upto)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// What of an object a controller pass may read: all but its `status` and
/// `metadata.resourceVersion`.
fn inputs(body: Option<&Value>) -> Option<Value> {
    let mut body = body?.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn notes_changes_outside_status_and_resource_version() {
        let counter = Arc::new(AtomicU64::new(0));
        let mut log = ChangeLog::new(counter.clone());
        let key: Key = ("ns".into(), "a".into());
        let v1 = json!({"metadata": {"resourceVersion": "1"}, "spec": {"x": 1}});
        let v2 =
            json!({"metadata": {"resourceVersion": "2"}, "spec": {"x": 1}, "status": {"y": 1}});
        let v3 = json!({"metadata": {"resourceVersion": "3"}, "spec": {"x": 2}});
        log.note_if_changed(&key, None, Some(&v1));
        assert_eq!(
            log.between(0, counter.load(Ordering::SeqCst)),
            std::slice::from_ref(&key)
        );
        log.note_if_changed(&key, Some(&v1), Some(&v2));
        assert_eq!(counter.load(Ordering::SeqCst), 1, "status only: no change");
        log.note_if_changed(&key, Some(&v2), Some(&v3));
        log.note_if_changed(&key, Some(&v3), None);
        assert_eq!(log.between(1, 3), std::slice::from_ref(&key));
        assert!(log.between(3, 3).is_empty());
        assert!(log.between(0, 1).is_empty(), "older numbers forgotten");
    }
}
