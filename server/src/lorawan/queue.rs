//! The downlink queue: the answers waiting for delivery, bounded by
//! device, keeping only the **newest** answer per device (acks are
//! cumulative: an older answer waiting is worthless once a newer exists).
//! Drained by [`super::downlink::DownlinkWorker`].

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::downlink::DownlinkTarget;
use crate::device_id::DeviceId;
use crate::metrics::Metrics;

/// An answer waiting, with its delivery attempts so far.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) device: DeviceId,
    pub(super) data: Arc<[u8]>,
    pub(super) attempts: u32,
    pub(super) due: Instant,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<DownlinkTarget, Pending>,
    closed: bool,
}

/// The answers waiting for delivery, newest per device.
#[derive(Debug, Default)]
pub struct DownlinkQueue {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
}

impl DownlinkQueue {
    /// A queue holding answers for at most `capacity` devices.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `data` for `target` (replacing an older answer waiting);
    /// returns the outcome label (`queued`, `replaced`, `queue_full`),
    /// counted.
    pub fn push(
        &self,
        target: DownlinkTarget,
        device: DeviceId,
        data: Arc<[u8]>,
        metrics: &Metrics,
    ) -> &'static str {
        let network = target.network().label();
        let mut s = self.lock();
        let new = Pending {
            device,
            data,
            attempts: 0,
            due: Instant::now(),
        };
        let outcome = if let Some(p) = s.pending.get_mut(&target) {
            *p = new;
            "replaced"
        } else if s.pending.len() >= self.capacity {
            "queue_full"
        } else {
            s.pending.insert(target, new);
            "queued"
        };
        drop(s);
        metrics.count_lora_downlink(network, outcome);
        self.wake.notify_all();
        outcome
    }

    /// The answer waiting for `target` (tests).
    pub fn waiting(&self, target: &DownlinkTarget) -> Option<Vec<u8>> {
        self.lock().pending.get(target).map(|p| p.data.to_vec())
    }

    /// Stop the worker (answers waiting are dropped).
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Answers waiting.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next due answer (taken out), waiting for one; `None` once closed.
    pub(super) fn next(&self) -> Option<(DownlinkTarget, Pending)> {
        let mut s = self.lock();
        loop {
            if s.closed {
                return None;
            }
            let now = Instant::now();
            let due = s
                .pending
                .iter()
                .min_by_key(|(_, p)| p.due)
                .map(|(k, p)| (k.clone(), p.due));
            match due {
                Some((target, at)) if at <= now => {
                    let p = s.pending.remove(&target)?;
                    return Some((target, p));
                }
                Some((_, at)) => {
                    s = self
                        .wake
                        .wait_timeout(s, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Put a failed attempt back, unless a newer answer arrived meanwhile.
    pub(super) fn retry(&self, target: DownlinkTarget, p: Pending) {
        self.lock().pending.entry(target).or_insert(p);
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_answer_per_device_is_kept() {
        let m = Metrics::new();
        let q = DownlinkQueue::new(2);
        let d = DeviceId::parse("dev-1").unwrap();
        let t = |e: &str| DownlinkTarget::ChirpStack { dev_eui: e.into() };
        let tts = DownlinkTarget::Tts {
            device_id: "a".into(),
        };
        assert_eq!(
            q.push(t("1"), d.clone(), Arc::from(&[1u8][..]), &m),
            "queued"
        );
        assert_eq!(
            q.push(t("1"), d.clone(), Arc::from(&[2u8][..]), &m),
            "replaced"
        );
        assert_eq!(
            q.push(tts.clone(), d.clone(), Arc::from(&[3u8][..]), &m),
            "queued"
        );
        assert_eq!(q.push(t("2"), d, Arc::from(&[4u8][..]), &m), "queue_full");
        assert_eq!(q.waiting(&t("1")), Some(vec![2]));
        assert_eq!(m.lora_downlinks("chirpstack", "replaced"), 1);
        assert_eq!(m.lora_downlinks("tts", "queued"), 1);
        let mut got = vec![q.next().unwrap().0, q.next().unwrap().0];
        got.sort_by_key(|t| format!("{t:?}"));
        assert_eq!(got, vec![t("1"), tts]);
        q.close();
        assert!(q.next().is_none());
    }
}
