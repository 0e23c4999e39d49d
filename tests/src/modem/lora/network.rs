//! The radio side of a simulated LoRaWAN modem: a [`LoraNetwork`] receives
//! every uplink a gateway heard and answers, class A, with at most one
//! downlink for that uplink's receive windows (RX1/RX2).
//!
//! Class A: a downlink reaches the device only in the receive windows after
//! one of its uplinks, and only if it was queued for the device *when the
//! uplink arrived* (a network server's application integration answers
//! asynchronously, so the answer to uplink N normally rides on uplink N+1).
//! Implementations: [`MemoryNetwork`] here (scripted, for modem tests), and
//! network-server simulators (ChirpStack v4, The Things Stack v3) that post
//! uplinks to the flotta server's webhooks as those servers do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// One uplink as the network server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraUplink {
    /// The device's DevEUI.
    pub dev_eui: [u8; 8],
    /// Uplink frame counter (FCntUp), incremented by the modem per new
    /// uplink (not per retransmission of a confirmed one).
    pub f_cnt: u32,
    /// FPort (1..=223 for application data; `None` for an empty uplink).
    pub f_port: Option<u8>,
    /// FRMPayload, decrypted.
    pub data: Vec<u8>,
    /// Data rate index of the uplink.
    pub dr: u8,
    /// Confirmed data up.
    pub confirmed: bool,
    /// RSSI at the gateway, dBm.
    pub rssi: i16,
    /// SNR at the gateway, tenths of a dB (ChirpStack and TTS report one
    /// decimal).
    pub snr_tenths_db: i16,
}

/// One downlink for an uplink's receive windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraDownlink {
    /// FPort (1..=223).
    pub f_port: u8,
    /// FRMPayload.
    pub data: Vec<u8>,
    /// Confirmed data down.
    pub confirmed: bool,
}

/// The network behind one or more simulated modems. Called from the
/// modem's thread.
pub trait LoraNetwork: Send + Sync {
    /// The device joined (OTAA): its session starts, FCntUp at 0.
    fn joined(&self, dev_eui: [u8; 8]);
    /// A gateway heard `up`; returns the downlink (if any) queued for the
    /// device at that moment, removed from its queue. An ack of a confirmed
    /// uplink is the modem's business, not this method's.
    fn uplink(&self, up: &LoraUplink) -> Option<LoraDownlink>;
}

#[derive(Default)]
struct Inner {
    uplinks: Vec<LoraUplink>,
    queues: HashMap<[u8; 8], VecDeque<LoraDownlink>>,
    joins: u32,
}

/// An in-memory network: records uplinks, serves downlinks queued with
/// [`MemoryNetwork::enqueue`].
#[derive(Default)]
pub struct MemoryNetwork {
    inner: Mutex<Inner>,
}

impl MemoryNetwork {
    /// An empty network.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue a downlink for `dev_eui` (delivered after its next uplink).
    pub fn enqueue(&self, dev_eui: [u8; 8], down: LoraDownlink) {
        self.lock()
            .queues
            .entry(dev_eui)
            .or_default()
            .push_back(down);
    }

    /// Every uplink heard so far.
    #[must_use]
    pub fn uplinks(&self) -> Vec<LoraUplink> {
        self.lock().uplinks.clone()
    }

    /// Joins accepted so far.
    #[must_use]
    pub fn joins(&self) -> u32 {
        self.lock().joins
    }
}

impl LoraNetwork for MemoryNetwork {
    fn joined(&self, _dev_eui: [u8; 8]) {
        self.lock().joins += 1;
    }

    fn uplink(&self, up: &LoraUplink) -> Option<LoraDownlink> {
        let mut inner = self.lock();
        inner.uplinks.push(up.clone());
        inner.queues.get_mut(&up.dev_eui)?.pop_front()
    }
}
