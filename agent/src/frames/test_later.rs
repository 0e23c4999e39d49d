//! Tests only: a class A carrier in front of a [`TestServer`]: answers come
//! later. The network server keeps one pending downlink per device (a newer
//! answer replaces it, as ChirpStack's flush + enqueue and TTS's `replace`
//! do); an uplink's receive windows bring whatever was pending *before* it
//! arrived, and the answer to the uplink itself waits for the next one.

use std::collections::BTreeSet;

use super::test_server::TestServer;
use crate::carrier::{CarrierError, FrameCarrier, Traffic};

/// The class A network in front of a [`TestServer`].
pub(crate) struct LaterCarrier<'s> {
    pub(crate) server: &'s mut TestServer,
    pub(crate) budget: usize,
    /// Uplinks (0-based, over the carrier's life) lost on the way up.
    pub(crate) lose_up: BTreeSet<usize>,
    /// Uplinks whose receive windows lose the downlink they carry.
    pub(crate) lose_down: BTreeSet<usize>,
    /// Uplinks that fail at the modem (nothing sent).
    pub(crate) fail: BTreeSet<usize>,
    /// Uplinks the governor holds back (nothing sent).
    pub(crate) hold: BTreeSet<usize>,
    /// Downlinks delivered with every uplink besides the pending one
    /// (replays of captured answers, forgeries).
    pub(crate) inject: Vec<Vec<u8>>,
    /// Every downlink delivered so far (for replays).
    pub(crate) delivered: Vec<Vec<u8>>,
    pub(crate) uplinks: usize,
    /// Whether frames may ask for an answer (the fair-use downlink budget).
    pub(crate) may_ask: bool,
    /// Uplinks a budget still allows (`None`: unmetered); past them,
    /// sends are held back.
    pub(crate) allowed: Option<usize>,
    pending: Option<Vec<u8>>,
    traffic: Traffic,
}

impl<'s> LaterCarrier<'s> {
    /// A faithful class A network in front of `server`.
    pub(crate) fn new(server: &'s mut TestServer, budget: usize) -> Self {
        Self {
            server,
            budget,
            lose_up: BTreeSet::new(),
            lose_down: BTreeSet::new(),
            fail: BTreeSet::new(),
            hold: BTreeSet::new(),
            inject: Vec::new(),
            delivered: Vec::new(),
            uplinks: 0,
            may_ask: true,
            allowed: None,
            pending: None,
            traffic: Traffic::default(),
        }
    }

    /// Downlinks the network server sent (pending ones not counted).
    pub(crate) fn downlinks(&self) -> usize {
        self.delivered.len()
    }
}

impl FrameCarrier for LaterCarrier<'_> {
    fn name(&self) -> &'static str {
        "later"
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn identifies_device(&self) -> bool {
        true
    }

    fn exchange(
        &mut self,
        _frame: &[u8],
        _is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError> {
        panic!("a carrier whose answers come later is driven with send")
    }

    fn answers_later(&self) -> bool {
        true
    }

    fn may_ask_answer(&self) -> bool {
        self.may_ask
    }

    fn held_back_now(&self, _frame_len: usize) -> Option<&'static str> {
        (self.allowed == Some(0)).then_some("duty_cycle")
    }

    fn room_for_another(&self, _frame_len: usize) -> bool {
        self.allowed.is_none_or(|a| a >= 2)
    }

    fn send(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, CarrierError> {
        assert!(frame.len() <= self.budget, "frame over budget");
        if let Some(allowed) = &mut self.allowed {
            if *allowed == 0 {
                return Err(CarrierError::HeldBack("duty_cycle"));
            }
            *allowed -= 1;
        }
        let n = self.uplinks;
        self.uplinks += 1;
        if self.fail.contains(&n) {
            return Err(CarrierError::Modem(format!("uplink {n} failed")));
        }
        if self.hold.contains(&n) {
            return Err(CarrierError::HeldBack("duty_cycle"));
        }
        self.traffic.sent += 1;
        self.traffic.bytes_up += frame.len() as u64;
        if self.lose_up.contains(&n) {
            return Ok(Vec::new());
        }
        // Class A: the receive windows carry what was queued before.
        let mut down = self.inject.clone();
        if let Some(d) = self.pending.take() {
            self.delivered.push(d.clone());
            if !self.lose_down.contains(&n) {
                down.push(d);
            }
        }
        if let Some(answer) = self.server.handle_scarce(frame) {
            self.pending = Some(answer);
        }
        self.traffic.received += down.len() as u64;
        self.traffic.bytes_down += down.iter().map(|d| d.len() as u64).sum::<u64>();
        Ok(down)
    }

    fn traffic(&self) -> Traffic {
        self.traffic
    }
}
