//! Link statistics counted where traffic arrives (the table and what is
//! counted: `store/link_days.rs`).
//!
//! [`ConnectionFacts`] travels with every request of one mTLS connection
//! (next to its `ClientIdentity`, see `listener/mtls.rs`): the handshake
//! kind, and whether the connection's upload window was counted yet (on
//! its first request of a device). [`LinkTally`] holds what is known only
//! after a store write committed (an answer's bytes; a duplicate frame
//! answered without the store) until the device's next write on that link
//! takes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::device_id::DeviceId;
use crate::store::LinkUsage;

/// What the requests of one TLS connection share.
#[derive(Debug)]
pub struct ConnectionFacts {
    resumed: bool,
    counted: AtomicBool,
}

impl ConnectionFacts {
    /// A connection whose handshake was resumed (`true`) or full.
    pub fn new(resumed: bool) -> Self {
        Self {
            resumed,
            counted: AtomicBool::new(false),
        }
    }

    /// Whether the handshake resumed a session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The window and handshake counters of a request: one window (full
    /// or resumed) for the connection's first request that asks, nothing
    /// for the others.
    pub fn claim_window(&self) -> LinkUsage {
        if self.counted.swap(true, Ordering::AcqRel) {
            return LinkUsage::default();
        }
        LinkUsage {
            windows: 1,
            tls_full: u64::from(!self.resumed),
            tls_resumed: u64::from(self.resumed),
            ..LinkUsage::default()
        }
    }
}

/// Entries kept at most: beyond, new devices' pending counts are dropped
/// (statistics, not records; memory stays bounded).
pub const MAX_PENDING: usize = 200_000;

/// Counts waiting for the device's next store write on a link.
#[derive(Debug, Default)]
pub struct LinkTally {
    pending: Mutex<HashMap<(DeviceId, &'static str), LinkUsage>>,
}

impl LinkTally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep `usage` of `link` for the device's next write.
    pub fn add(&self, id: &DeviceId, link: &'static str, usage: &LinkUsage) {
        if usage.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let key = (id.clone(), link);
        if let Some(p) = pending.get_mut(&key) {
            p.add(usage);
        } else if pending.len() < MAX_PENDING {
            pending.insert(key, *usage);
        }
    }

    /// Take what waits for the device on `link` (a write that fails gives
    /// it back with [`LinkTally::add`]).
    pub fn take(&self, id: &DeviceId, link: &'static str) -> LinkUsage {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.remove(&(id.clone(), link)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_one_window_of_its_handshake_kind() {
        let resumed = ConnectionFacts::new(true);
        let first = resumed.claim_window();
        assert_eq!(
            (first.windows, first.tls_full, first.tls_resumed),
            (1, 0, 1)
        );
        assert!(resumed.claim_window().is_empty(), "second request: nothing");
        let full = ConnectionFacts::new(false).claim_window();
        assert_eq!((full.windows, full.tls_full, full.tls_resumed), (1, 1, 0));
    }

    #[test]
    fn the_tally_adds_up_per_device_and_link_until_taken() {
        let tally = LinkTally::new();
        let (a, b) = (
            DeviceId::parse("dev-a").unwrap(),
            DeviceId::parse("dev-b").unwrap(),
        );
        let down = |n| LinkUsage {
            bytes_down: n,
            ..LinkUsage::default()
        };
        tally.add(&a, "tls", &down(10));
        tally.add(&a, "tls", &down(5));
        tally.add(&a, "udp", &down(7));
        tally.add(&b, "tls", &down(1));
        assert_eq!(tally.take(&a, "tls").bytes_down, 15);
        assert!(tally.take(&a, "tls").is_empty(), "taken once");
        assert_eq!(tally.take(&a, "udp").bytes_down, 7);
        assert_eq!(tally.take(&b, "tls").bytes_down, 1);
    }
}
