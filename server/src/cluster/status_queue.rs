//! Status writes, coalesced and rate-limited: the controller puts an
//! object's new status here and goes on; one writer task applies them
//! (server-side apply on the status subresource) at most
//! `kubernetes_status_writes_per_second`, oldest first, only the newest
//! status of each object, and reads see a queued status at once.
//!
//! So the API write rate is bounded whatever the fleet does: a heartbeat
//! changes no status (presence and phases change on transitions only), and
//! a burst of transitions (a site losing power) drains at the budget.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Shared;
use crate::objects::Kind;

/// An object: kind, namespace, name.
pub type Key = (Kind, String, String);

/// Statuses waiting to be written.
#[derive(Debug, Default)]
pub struct StatusQueue {
    inner: Mutex<Inner>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// The newest status of every object not yet written (including the
    /// one being written).
    latest: HashMap<Key, Value>,
    /// Objects waiting for the writer, oldest first.
    order: VecDeque<Key>,
    waiting: HashSet<Key>,
}

impl StatusQueue {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `status` for `key`, replacing a queued one. Returns false when
    /// exactly this status is queued already.
    pub fn put(&self, key: Key, status: Value) -> bool {
        let mut inner = self.inner();
        if inner.latest.get(&key) == Some(&status) {
            return false;
        }
        inner.latest.insert(key.clone(), status);
        if inner.waiting.insert(key.clone()) {
            inner.order.push_back(key);
        }
        drop(inner);
        self.wake.notify_one();
        true
    }

    /// The status queued (or being written) for `key`.
    pub fn pending(&self, key: &Key) -> Option<Value> {
        self.inner().latest.get(key).cloned()
    }

    /// Statuses not yet written.
    pub fn len(&self) -> usize {
        self.inner().latest.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest waiting object and its newest status (it stays readable
    /// through [`StatusQueue::pending`] while it is written).
    fn next(&self) -> Option<(Key, Value)> {
        let mut inner = self.inner();
        let key = inner.order.pop_front()?;
        inner.waiting.remove(&key);
        let status = inner.latest.get(&key).cloned()?;
        Some((key, status))
    }

    /// `status` of `key` was written (or is moot: the object is gone).
    fn written(&self, key: &Key, status: &Value) {
        let mut inner = self.inner();
        if inner.latest.get(key) == Some(status) {
            inner.latest.remove(key);
        }
    }

    /// Writing failed and may succeed later: queue it again unless a newer
    /// status took its place (which is queued already).
    fn retry(&self, key: Key) {
        let mut inner = self.inner();
        if inner.latest.contains_key(&key) && inner.waiting.insert(key.clone()) {
            inner.order.push_back(key);
        }
    }
}

/// Write queued statuses until `shutdown` turns true, one every
/// `1 / writes_per_second` at most.
pub(super) async fn run_writer(
    shared: Arc<Shared>,
    writes_per_second: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let gap = Duration::from_secs(1) / writes_per_second.max(1);
    let mut next_slot = Instant::now();
    loop {
        let queue = &shared.status;
        shared
            .metrics
            .kube_status_pending
            .set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
        let Some((key, status)) = queue.next() else {
            tokio::select! {
                _ = queue.wake.notified() => continue,
                _ = shutdown.wait_for(|s| *s) => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(next_slot) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        next_slot = Instant::now() + gap;
        let (kind, ns, name) = &key;
        match shared.apply_status(*kind, ns, name, &status).await {
            Ok(_) => queue.written(&key, &status),
            Err(e) if e.is_retriable() => {
                tracing::debug!("status of {kind} {ns}/{name} not written yet: {e}");
                queue.retry(key);
                // Back off a little: the API server is busy or away.
                next_slot += Duration::from_millis(500);
            }
            Err(e) => {
                tracing::warn!("status of {kind} {ns}/{name} refused: {e}");
                queue.written(&key, &status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> Key {
        (Kind::EdgeDevice, "default".into(), name.into())
    }

    #[test]
    fn coalesces_per_object_oldest_first() {
        let q = StatusQueue::default();
        assert!(q.put(key("a"), json!({"phase": "up"})));
        assert!(q.put(key("b"), json!({"phase": "up"})));
        assert!(q.put(key("a"), json!({"phase": "degraded"})));
        assert!(!q.put(key("a"), json!({"phase": "degraded"})));
        assert_eq!(q.len(), 2);
        let (k, s) = q.next().unwrap();
        assert_eq!((k.2.as_str(), s), ("a", json!({"phase": "degraded"})));
        // Readable while written; a newer one queued meanwhile survives.
        assert_eq!(q.pending(&key("a")), Some(json!({"phase": "degraded"})));
        assert!(q.put(key("a"), json!({"phase": "up"})));
        q.written(&key("a"), &json!({"phase": "degraded"}));
        assert_eq!(q.pending(&key("a")), Some(json!({"phase": "up"})));
        assert_eq!(q.next().unwrap().0, key("b"));
        assert_eq!(q.next().unwrap(), (key("a"), json!({"phase": "up"})));
        assert!(q.next().is_none());
        q.written(&key("b"), &json!({"phase": "up"}));
        q.written(&key("a"), &json!({"phase": "up"}));
        assert!(q.is_empty());
    }

    #[test]
    fn a_failed_write_is_queued_again_once() {
        let q = StatusQueue::default();
        q.put(key("a"), json!(1));
        let (k, _) = q.next().unwrap();
        q.put(key("a"), json!(2));
        q.retry(k);
        assert_eq!(q.next(), Some((key("a"), json!(2))));
        assert!(q.next().is_none());
    }
}
