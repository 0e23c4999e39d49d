//! [`ObjectSource`]: where Flotta's objects (and the ConfigMaps and Secrets
//! workloads reference) live. One controller core runs over either source:
//!
//! - the embedded store's object table (`objects = "embedded"`, the default;
//!   [`StoreObjects`], and every [`Store`] directly), or
//! - a Kubernetes cluster (`objects = "kubernetes"`; `crate::cluster`), read
//!   from watch-fed caches and written through the API server.
//!
//! Reads are cheap (memory or one indexed query) and never wait for the
//! network; writes are durable when they return, except [`ObjectSource::put_status`],
//! which a source may coalesce and rate-limit (a later read already sees it).

use std::fmt::Debug;
use std::sync::Arc;

use serde_json::Value;

use crate::store::{ObjectKey, Store, StoreError, StoredObject};

/// Flotta's objects, by (kind, namespace, name); kinds as spelt in manifests.
pub trait ObjectSource: Debug + Send + Sync {
    /// The object, if present.
    fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError>;

    /// Objects of a kind (in one namespace, or all when `None`), ordered by
    /// namespace then name.
    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<StoredObject>, StoreError>;

    /// Create the object, or update its metadata and spec (its `status` is
    /// the source's to keep: see [`ObjectSource::put_status`]).
    fn put(&self, object: &StoredObject) -> Result<(), StoreError>;

    /// Replace the status of an existing object (a Kubernetes status
    /// subresource). A source may write it later, coalesced with newer
    /// statuses of the same object; reads see it at once.
    fn put_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<(), StoreError>;

    /// Delete the object; returns whether it existed.
    fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError>;

    /// Objects created, deleted or changed outside their `status` since
    /// `cursor` (`None`: only a cursor to start from), for the incremental
    /// controller pass. A source that cannot tell answers
    /// [`ObjectChanges::Unknown`], and every pass over it is a full one.
    fn object_changes(&self, _cursor: Option<u64>) -> ObjectChanges {
        ObjectChanges::Unknown
    }
}

/// What [`ObjectSource::object_changes`] can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectChanges {
    /// The objects are the store's: its change feed
    /// ([`Store::changes_since`]) has them.
    InStore,
    /// These objects changed since the cursor given; `cursor` is the next.
    Since {
        /// The objects.
        objects: Vec<ObjectKey>,
        /// Where the next call starts.
        cursor: u64,
    },
    /// The source cannot tell.
    Unknown,
}

impl<S: Store + ?Sized> ObjectSource for S {
    fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        self.get_object(kind, namespace, name)
    }

    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<StoredObject>, StoreError> {
        self.list_objects(kind, namespace)
    }

    /// The store keeps the whole body, status included: the stored status
    /// is kept when `object` carries none.
    fn put(&self, object: &StoredObject) -> Result<(), StoreError> {
        let mut object = object.clone();
        if object.body.get("status").is_none()
            && let Some(status) = self
                .get_object(&object.kind, &object.namespace, &object.name)?
                .and_then(|o| o.body.get("status").cloned())
        {
            object.body["status"] = status;
        }
        self.put_object(&object)
    }

    fn put_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<(), StoreError> {
        let Some(mut object) = self.get_object(kind, namespace, name)? else {
            return Err(StoreError::Conflict(format!(
                "{kind} {namespace}/{name} is gone: no status written"
            )));
        };
        object.body["status"] = status.clone();
        self.put_object(&object)
    }

    fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError> {
        self.delete_object(kind, namespace, name)
    }

    fn object_changes(&self, _cursor: Option<u64>) -> ObjectChanges {
        ObjectChanges::InStore
    }
}

/// The embedded store's object table as a shareable source.
#[derive(Debug, Clone)]
pub struct StoreObjects(pub Arc<dyn Store>);

impl ObjectSource for StoreObjects {
    fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        ObjectSource::get(&*self.0, kind, namespace, name)
    }

    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<StoredObject>, StoreError> {
        ObjectSource::list(&*self.0, kind, namespace)
    }

    fn put(&self, object: &StoredObject) -> Result<(), StoreError> {
        ObjectSource::put(&*self.0, object)
    }

    fn put_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<(), StoreError> {
        ObjectSource::put_status(&*self.0, kind, namespace, name, status)
    }

    fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, StoreError> {
        ObjectSource::delete(&*self.0, kind, namespace, name)
    }

    fn object_changes(&self, _cursor: Option<u64>) -> ObjectChanges {
        ObjectChanges::InStore
    }
}
