//! A kind's objects mirrored from the cluster: a kube-rs `watcher` (list,
//! then watch; re-list after a lost watch, with kube's back-off) feeding a
//! map sorted by (namespace, name), so the controller's lists come out in
//! the order the embedded store gives.
//!
//! The server's own writes go in at once with the object the API server
//! answered ([`Mirror::record`], [`Mirror::record_deleted`]), so a read
//! right after a write sees it (a controller pass never creates twice);
//! a watch event older than what the map holds (by resource version) is
//! ignored, so a late event cannot bring back a deleted object or an old
//! spec. Changes that come from the watch (someone else's writes) are
//! counted in a channel that wakes the controller.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::watch;

use super::changelog::{ChangeLog, Key};
use super::wire::{kept, resource_version};
use crate::objects::Kind;

/// One kind's mirror.
#[derive(Debug)]
pub(super) struct Mirror {
    kind: Kind,
    state: Mutex<State>,
    changed: Arc<watch::Sender<u64>>,
    synced: watch::Sender<bool>,
}

#[derive(Debug)]
struct State {
    objects: BTreeMap<Key, Value>,
    /// Objects this server deleted, by the resource version it last saw,
    /// until the watch confirms.
    deleted: HashMap<Key, u64>,
    /// Objects listed since the watch (re)started, until the list is done.
    listing: Option<BTreeMap<Key, Value>>,
    /// Keys this server wrote while a list was running.
    written_while_listing: HashSet<Key>,
    /// Which objects changed, for incremental controller passes.
    log: ChangeLog,
}

fn key_of(body: &Value) -> Option<Key> {
    let meta = body.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    Some((ns.to_owned(), name.to_owned()))
}

impl Mirror {
    /// An empty mirror of `kind`, counting watched changes in `changed`
    /// and numbering changed objects from `numbers` (shared by all kinds).
    pub(super) fn new(
        kind: Kind,
        changed: Arc<watch::Sender<u64>>,
        numbers: Arc<AtomicU64>,
    ) -> Self {
        Self {
            kind,
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                deleted: HashMap::new(),
                listing: None,
                written_while_listing: HashSet::new(),
                log: ChangeLog::new(numbers),
            }),
            changed,
            synced: watch::Sender::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent map: every
        // change is one insert or remove.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kind mirrored.
    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// The object, if present.
    pub(super) fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Objects in `namespace` (all when `None`), by namespace then name.
    pub(super) fn list(&self, namespace: Option<&str>) -> Vec<Value> {
        let state = self.state();
        match namespace {
            None => state.objects.values().cloned().collect(),
            Some(ns) => state
                .objects
                .range((ns.to_owned(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// Objects that changed with a number in `(after, upto]`.
    pub(super) fn changed_between(&self, after: u64, upto: u64) -> Vec<Key> {
        self.state().log.between(after, upto)
    }

    /// Whether the first full list arrived.
    #[cfg(test)]
    pub(super) fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Wait until the first full list arrived.
    pub(super) async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// An object the API server answered one of this server's writes with.
    pub(super) fn record(&self, body: Value) {
        let body = kept(body);
        let Some(key) = key_of(&body) else { return };
        let mut state = self.state();
        let rv = resource_version(&body);
        if state
            .objects
            .get(&key)
            .is_some_and(|old| resource_version(old) > rv)
        {
            return;
        }
        state.deleted.remove(&key);
        if state.listing.is_some() {
            state.written_while_listing.insert(key.clone());
        }
        let old = state.objects.insert(key.clone(), body);
        let new = state.objects.get(&key).cloned();
        state.log.note_if_changed(&key, old.as_ref(), new.as_ref());
    }

    /// This server deleted the object (last seen at `resource_version`).
    pub(super) fn record_deleted(&self, namespace: &str, name: &str, resource_version: u64) {
        let key = (namespace.to_owned(), name.to_owned());
        let mut state = self.state();
        if state.objects.remove(&key).is_some() {
            state.log.note(&key);
        }
        if state.listing.is_some() {
            state.written_while_listing.insert(key.clone());
        }
        state.deleted.insert(key, resource_version);
    }

    /// Apply one watch event; returns whether the mirror changed.
    pub(super) fn apply(&self, event: watcher::Event<Value>) -> bool {
        let mut state = self.state();
        match event {
            watcher::Event::Init => {
                state.listing = Some(BTreeMap::new());
                state.written_while_listing.clear();
                false
            }
            watcher::Event::InitApply(body) => {
                let body = kept(body);
                if let (Some(key), Some(listing)) = (key_of(&body), state.listing.as_mut()) {
                    listing.insert(key, body);
                }
                false
            }
            watcher::Event::InitDone => {
                let mut listed = state.listing.take().unwrap_or_default();
                let written = std::mem::take(&mut state.written_while_listing);
                for key in written {
                    // A write of ours newer than what the list saw stays.
                    match (state.objects.get(&key), listed.get(&key)) {
                        (Some(ours), Some(seen))
                            if resource_version(ours) > resource_version(seen) =>
                        {
                            listed.insert(key, ours.clone());
                        }
                        (Some(ours), None) => {
                            listed.insert(key, ours.clone());
                        }
                        (None, Some(seen))
                            if state
                                .deleted
                                .get(&key)
                                .is_some_and(|rv| *rv >= resource_version(seen)) =>
                        {
                            listed.remove(&key);
                        }
                        _ => {}
                    }
                }
                state.deleted.retain(|k, _| listed.contains_key(k));
                let keys: HashSet<Key> =
                    state.objects.keys().chain(listed.keys()).cloned().collect();
                for key in keys {
                    let old = state.objects.get(&key).cloned();
                    state
                        .log
                        .note_if_changed(&key, old.as_ref(), listed.get(&key));
                }
                let changed = state.objects != listed;
                state.objects = listed;
                drop(state);
                self.synced.send_replace(true);
                changed
            }
            watcher::Event::Apply(body) => {
                let body = kept(body);
                let Some(key) = key_of(&body) else {
                    return false;
                };
                let rv = resource_version(&body);
                if state.deleted.get(&key).is_some_and(|d| *d >= rv)
                    || state
                        .objects
                        .get(&key)
                        .is_some_and(|old| resource_version(old) >= rv && rv != 0)
                {
                    return false;
                }
                state.deleted.remove(&key);
                let changed = state.objects.get(&key) != Some(&body);
                let old = state.objects.insert(key.clone(), body);
                let new = state.objects.get(&key).cloned();
                state.log.note_if_changed(&key, old.as_ref(), new.as_ref());
                changed
            }
            watcher::Event::Delete(body) => {
                let Some(key) = key_of(&body) else {
                    return false;
                };
                let rv = resource_version(&body);
                state.deleted.remove(&key);
                match state.objects.get(&key) {
                    Some(old) if resource_version(old) > rv && rv != 0 => false,
                    Some(_) => {
                        state.objects.remove(&key);
                        state.log.note(&key);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// Mirror `api` until `shutdown` turns true: list, watch, and list again
    /// after a lost watch (kube's default back-off between attempts).
    pub(super) async fn run(
        self: Arc<Self>,
        api: Api<DynamicObject>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let events = watcher(api, watcher::Config::default()).default_backoff();
        let mut events = std::pin::pin!(events);
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match next {
                Some(Ok(event)) => {
                    if self.apply(as_values(event)) {
                        self.changed.send_modify(|n| *n += 1);
                    }
                }
                Some(Err(e)) => tracing::warn!(kind = %self.kind, "kubernetes watch: {e}"),
                None => return,
            }
        }
    }
}

/// A watch event with the object as JSON.
fn as_values(event: watcher::Event<DynamicObject>) -> watcher::Event<Value> {
    let value = |o: DynamicObject| serde_json::to_value(o).unwrap_or(Value::Null);
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(value(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(value(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(value(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use watcher::Event;

    use super::*;

    fn obj(ns: &str, name: &str, rv: u64, spec: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "resourceVersion": rv.to_string(),
            "managedFields": [{"manager": "kubectl"}]}, "spec": {"x": spec}})
    }

    fn mirror() -> Mirror {
        Mirror::new(
            Kind::EdgeDevice,
            Arc::new(watch::Sender::new(0)),
            Arc::new(AtomicU64::new(0)),
        )
    }

    fn listed(m: &Mirror, objects: &[Value]) -> bool {
        m.apply(Event::Init);
        for o in objects {
            m.apply(Event::InitApply(o.clone()));
        }
        m.apply(Event::InitDone)
    }

    #[test]
    fn lists_sorted_by_namespace_then_name_without_managed_fields() {
        let m = mirror();
        assert!(!m.is_synced());
        assert!(listed(
            &m,
            &[
                obj("b", "x", 1, "1"),
                obj("a", "z", 2, "1"),
                obj("a", "y", 3, "1")
            ]
        ));
        assert!(m.is_synced());
        let names: Vec<_> = m
            .list(None)
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, ["y", "z", "x"]);
        assert_eq!(m.list(Some("a")).len(), 2);
        assert_eq!(m.list(Some("c")).len(), 0);
        assert!(
            m.get("b", "x")
                .unwrap()
                .pointer("/metadata/managedFields")
                .is_none()
        );
    }

    #[test]
    fn old_events_never_undo_newer_writes() {
        let m = mirror();
        listed(&m, &[obj("a", "x", 5, "old")]);
        m.record(obj("a", "x", 9, "ours"));
        // The watch catches up with events older than our write.
        assert!(!m.apply(Event::Apply(obj("a", "x", 7, "between"))));
        assert_eq!(m.get("a", "x").unwrap()["spec"]["x"], "ours");
        // Someone else's later write wins.
        assert!(m.apply(Event::Apply(obj("a", "x", 12, "theirs"))));
        assert_eq!(m.get("a", "x").unwrap()["spec"]["x"], "theirs");
        // Our delete holds against the older echo of a write.
        m.record_deleted("a", "x", 12);
        assert!(!m.apply(Event::Apply(obj("a", "x", 12, "theirs"))));
        assert!(m.get("a", "x").is_none());
        assert!(!m.apply(Event::Delete(obj("a", "x", 13, "theirs"))));
        // Created again later: seen.
        assert!(m.apply(Event::Apply(obj("a", "x", 20, "again"))));
        assert_eq!(m.get("a", "x").unwrap()["spec"]["x"], "again");
        // A delete event for an older version does not remove a newer object.
        assert!(!m.apply(Event::Delete(obj("a", "x", 15, "gone"))));
        assert!(m.get("a", "x").is_some());
        assert!(m.apply(Event::Delete(obj("a", "x", 21, "again"))));
        assert!(m.get("a", "x").is_none());
    }

    #[test]
    fn a_relist_replaces_everything_but_our_newer_writes() {
        let m = mirror();
        listed(&m, &[obj("a", "x", 5, "1"), obj("a", "gone", 6, "1")]);
        m.apply(Event::Init);
        m.apply(Event::InitApply(obj("a", "x", 5, "1")));
        m.apply(Event::InitApply(obj("a", "deleted-by-us", 6, "1")));
        m.record(obj("a", "x", 30, "ours"));
        m.record(obj("a", "created", 31, "ours"));
        m.record_deleted("a", "deleted-by-us", 6);
        assert!(m.apply(Event::InitDone));
        let names: Vec<_> = m
            .list(None)
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, ["created", "x"]);
        assert_eq!(m.get("a", "x").unwrap()["spec"]["x"], "ours");
        // An unchanged relist is no change.
        let now: Vec<Value> = m.list(None);
        assert!(!listed(&m, &now));
    }
}
