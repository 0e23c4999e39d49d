//! [`ClusterObjects`]: the cluster as the controller's [`ObjectSource`].
//! Reads come from the mirrors (memory, never the network), with queued
//! statuses laid over; writes go to the API server and wait for its answer
//! (blocking: the controller runs on tokio's blocking pool), statuses go to
//! the rate-limited queue.
//!
//! A write sends only what changed (a merge patch against the mirrored
//! object), so an operator's concurrent edit of another field is never
//! overwritten, and never removes a finalizer; EdgeDevices get the server's
//! finalizer ([`super::wire::FINALIZER`]) so that deleting one in the
//! cluster decommissions its device first (`super::finalizer`).

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::Shared;
use super::wire::{FINALIZER, deleting, finalizers, merge_patch, sendable, with_finalizer};
use crate::objects::{Kind, ObjectChanges, ObjectSource};
use crate::store::{ObjectKey, StoreError, StoredObject};

/// The cluster's objects (see the module docs).
#[derive(Debug, Clone)]
pub struct ClusterObjects {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
}

fn kind_of(kind: &str) -> Result<Kind, StoreError> {
    kind.parse().map_err(|_| StoreError::Kubernetes {
        message: format!("unknown kind {kind}"),
        retriable: false,
    })
}

fn stored(kind: Kind, body: Value) -> StoredObject {
    let meta = |k: &str| {
        body.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    StoredObject {
        kind: kind.as_str().to_owned(),
        namespace: meta("namespace"),
        name: meta("name"),
        body,
    }
}

impl ClusterObjects {
    /// The source over `shared`, blocking on `runtime` for writes.
    pub(super) fn new(shared: Arc<Shared>, runtime: tokio::runtime::Handle) -> Self {
        Self { shared, runtime }
    }

    fn block<T>(&self, request: impl Future<Output = T>) -> T {
        self.runtime.block_on(request)
    }

    /// `object` with its queued status (if any) laid over.
    fn with_pending_status(&self, kind: Kind, mut object: StoredObject) -> StoredObject {
        let key = (kind, object.namespace.clone(), object.name.clone());
        if let Some(status) = self.shared.status.pending(&key) {
            object.body["status"] = status;
        }
        object
    }

    /// The mirrored object with its queued status laid over.
    fn read(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let body = self.shared.mirrors.get(&kind)?.get(namespace, name)?;
        Some(self.with_pending_status(kind, stored(kind, body)).body)
    }

    /// What to send for `object`: its spec and metadata, the finalizers the
    /// object has kept, and the server's on EdgeDevices.
    fn desired(kind: Kind, object: &StoredObject, current: Option<&Value>) -> Value {
        let mut body = sendable(&object.body);
        let mut kept = current.map(finalizers).unwrap_or_default();
        for f in finalizers(&body) {
            if !kept.contains(&f) {
                kept.push(f);
            }
        }
        if !kept.is_empty()
            && let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("finalizers".into(), Value::from(kept));
        }
        if kind == Kind::EdgeDevice {
            body = with_finalizer(body);
        }
        body
    }
}

impl ObjectSource for ClusterObjects {
    fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let kind = kind_of(kind)?;
        Ok(self.read(kind, namespace, name).map(|b| stored(kind, b)))
    }

    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<StoredObject>, StoreError> {
        let kind = kind_of(kind)?;
        let Some(mirror) = self.shared.mirrors.get(&kind) else {
            return Ok(Vec::new());
        };
        Ok(mirror
            .list(namespace)
            .into_iter()
            .map(|body| self.with_pending_status(kind, stored(kind, body)))
            .collect())
    }

    fn put(&self, object: &StoredObject) -> Result<(), StoreError> {
        let kind = kind_of(&object.kind)?;
        let (ns, name) = (object.namespace.as_str(), object.name.as_str());
        let mut current = self.read(kind, ns, name);
        if current.is_none() {
            let body = Self::desired(kind, object, None);
            match self.block(self.shared.create(kind, &body)) {
                Ok(_) => return Ok(()),
                // Created by someone else since the mirror last heard:
                // read it and patch it below.
                Err(StoreError::Conflict(_)) => {
                    current = self.block(self.shared.fetch(kind, ns, name))?;
                }
                Err(e) => return Err(e),
            }
        }
        let Some(current) = current else {
            return Err(StoreError::Conflict(format!(
                "{kind} {ns}/{name} was deleted while it was created"
            )));
        };
        if deleting(&current) {
            return Err(StoreError::Conflict(format!(
                "{kind} {ns}/{name} is being deleted"
            )));
        }
        let desired = Self::desired(kind, object, Some(&current));
        let Some(patch) = merge_patch(&sendable(&current), &desired) else {
            return Ok(());
        };
        match self.block(self.shared.patch(kind, ns, name, &patch))? {
            Some(_) => Ok(()),
            None => Err(StoreError::Conflict(format!(
                "{kind} {ns}/{name} was deleted while it was patched"
            ))),
        }
    }

    fn put_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<(), StoreError> {
        let kind = kind_of(kind)?;
        let Some(current) = self.read(kind, namespace, name) else {
            return Err(StoreError::Conflict(format!(
                "{kind} {namespace}/{name} is gone: no status written"
            )));
        };
        if current.get("status") != Some(status) {
            self.shared.status.put(
                (kind, namespace.to_owned(), name.to_owned()),
                status.clone(),
            );
        }
        Ok(())
    }

    fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError> {
        let kind = kind_of(kind)?;
        let Some(current) = self.read(kind, namespace, name) else {
            return Ok(false);
        };
        let held = finalizers(&current);
        if held.iter().any(|f| f == FINALIZER) {
            let rest: Vec<&String> = held.iter().filter(|f| *f != FINALIZER).collect();
            let patch = serde_json::json!({"metadata": {"finalizers": rest}});
            if self
                .block(self.shared.patch(kind, namespace, name, &patch))?
                .is_none()
            {
                return Ok(false);
            }
        }
        if deleting(&current) && held.iter().all(|f| f == FINALIZER) {
            // Our finalizer was the last: the API server removes it now.
            return Ok(true);
        }
        self.block(self.shared.delete(kind, namespace, name, &current))
    }

    fn object_changes(&self, cursor: Option<u64>) -> ObjectChanges {
        let upto = self
            .shared
            .change_numbers
            .load(std::sync::atomic::Ordering::SeqCst);
        let mut objects = Vec::new();
        if let Some(after) = cursor {
            for (kind, mirror) in &self.shared.mirrors {
                objects.extend(mirror.changed_between(after, upto).into_iter().map(
                    |(namespace, name)| ObjectKey {
                        kind: kind.as_str().to_owned(),
                        namespace,
                        name,
                    },
                ));
            }
        }
        ObjectChanges::Since {
            objects,
            cursor: upto,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(kind: Kind, body: Value) -> StoredObject {
        stored(kind, body)
    }

    #[test]
    fn what_is_sent_keeps_finalizers_and_adds_ours_to_edgedevices() {
        let current = json!({"metadata": {"name": "d", "namespace": "n", "resourceVersion": "5",
            "finalizers": ["example.com/backup"]}, "spec": {}, "status": {"phase": "up"}});
        // An apply without finalizers (an operator's manifest) drops none.
        let manifest = object(
            Kind::EdgeDevice,
            json!({"metadata": {"name": "d", "namespace": "n", "uid": "u"}, "spec": {"x": 1}}),
        );
        let sent = ClusterObjects::desired(Kind::EdgeDevice, &manifest, Some(&current));
        assert_eq!(finalizers(&sent), ["example.com/backup", FINALIZER]);
        assert!(sent.get("status").is_none() && sent.pointer("/metadata/uid").is_none());
        assert_eq!(
            merge_patch(&sendable(&current), &sent),
            Some(
                json!({"metadata": {"finalizers": ["example.com/backup", FINALIZER]},
                "spec": {"x": 1}})
            )
        );
        // Other kinds get no finalizer of ours.
        let workload = object(
            Kind::EdgeWorkload,
            json!({"metadata": {"name": "w"}, "spec": {}}),
        );
        assert!(
            finalizers(&ClusterObjects::desired(
                Kind::EdgeWorkload,
                &workload,
                None
            ))
            .is_empty()
        );
    }
}
