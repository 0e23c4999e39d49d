//! A carrier kept within the governor's budgets (`governor/`): every
//! transmission the inner carrier would make is first admitted (duty cycle,
//! fair use, credits). Airtime is charged *before* the radio keys up, as
//! admitted (persisted: a process killed mid-transmission cannot spend
//! the hour twice; a transmission that then fails stays charged, which
//! errs on the legal side); whatever the inner carrier's [`Traffic`] shows
//! beyond that, and the credits a session cost (only a successful one
//! costs any), are charged after it. A frame that asks
//! for an answer (`ask_answer`) owes the downlink it will bring (servers
//! answer links with few downlinks only when asked), which counts against
//! fair use until a downlink arrives; every downlink is counted when it
//! arrives, after this uplink or a later one. A refused transmission is [`CarrierError::HeldBack`]: the
//! window ends there, its records stay queued (the plan sends the summary
//! first, so what is held back is the newest), and the report names the
//! budget.
//!
//! Carriers without a metered cost ([`FrameCarrier::transmission`] is
//! `None`: UDP) pass through untouched.

use std::sync::{Arc, Mutex, PoisonError};

use super::{CarrierError, FrameCarrier, Traffic};
use crate::governor::sim_clock::governor_now;
use crate::governor::{Decision, Governor, Transmission};

/// The governor shared by the carriers of one process.
pub type SharedGovernor = Arc<Mutex<Governor>>;

/// An inner carrier behind the governor.
pub(crate) struct Governed {
    inner: Box<dyn FrameCarrier>,
    governor: SharedGovernor,
    /// The last transmission's receive windows: whether an answer was
    /// owed before it, and whether a downlink came (for `ask_answer`).
    last_rx: (bool, bool),
}

impl Governed {
    /// `inner`, admitted and charged by `governor`.
    pub(crate) fn new(inner: Box<dyn FrameCarrier>, governor: SharedGovernor) -> Self {
        Self {
            inner,
            governor,
            last_rx: (false, false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Governor> {
        self.governor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admit a frame of `len` bytes (`None`: not metered).
    fn admit(&self, len: usize) -> Result<Option<Transmission>, CarrierError> {
        let Some(tx) = self.inner.transmission(len) else {
            return Ok(None);
        };
        let mut g = self.lock();
        match g.admit(governor_now(), &tx) {
            Decision::Now => Ok(Some(tx)),
            refused => {
                let budget = refused
                    .blocking()
                    .expect("a refusal names the budget that blocks");
                g.held_back(1, budget);
                Err(CarrierError::HeldBack(budget.name()))
            }
        }
    }

    /// Charge `tx`'s airtime before it is on air; returns the ms charged.
    fn prepay(&self, tx: Option<Transmission>) -> u64 {
        let Some(tx) = tx.filter(|t| t.airtime_ms > 0) else {
            return 0;
        };
        let airtime = Transmission {
            sbd_credits: 0,
            may_downlink: false,
            ..tx
        };
        if let Err(e) = self.lock().record_sent(governor_now(), &airtime) {
            crate::journal::warn(&format!("governor: {e}"));
        }
        u64::from(tx.airtime_ms)
    }

    /// Charge what the inner carrier spent since `before`, beyond the
    /// `prepaid` airtime.
    fn charge(&mut self, tx: Option<Transmission>, prepaid_ms: u64, before: &Traffic) {
        let Some(mut tx) = tx else { return };
        let spent = self.inner.traffic().since(before);
        if tx.link.is_lorawan() {
            // Every downlink counts for fair use, when it arrives.
            let owed = match self.lock().record_downlinks(governor_now(), spent.received) {
                Ok(owed) => owed,
                Err(e) => {
                    crate::journal::warn(&format!("governor: {e}"));
                    true
                }
            };
            self.last_rx = (owed, spent.received > 0);
        }
        if spent.sent == 0 && spent.sessions == 0 {
            return;
        }
        let airtime = spent.airtime_ms.saturating_sub(prepaid_ms);
        tx.airtime_ms = u32::try_from(airtime).unwrap_or(u32::MAX);
        tx.sbd_credits = u32::try_from(spent.credits).unwrap_or(u32::MAX);
        if tx.airtime_ms == 0 && tx.sbd_credits == 0 {
            return;
        }
        let now = governor_now();
        let mut g = self.lock();
        // A usage file that cannot be written is logged, not fatal: the
        // budget is still kept in memory for this process.
        if let Err(e) = g.record_sent(now, &tx) {
            crate::journal::warn(&format!("governor: {e}"));
        }
    }
}

impl FrameCarrier for Governed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn budget(&self) -> usize {
        self.inner.budget()
    }

    fn identifies_device(&self) -> bool {
        self.inner.identifies_device()
    }

    fn exchange(
        &mut self,
        frame: &[u8],
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError> {
        let tx = self.admit(frame.len())?;
        let prepaid = self.prepay(tx);
        let before = self.inner.traffic();
        let result = self.inner.exchange(frame, is_answer);
        self.charge(tx, prepaid, &before);
        result
    }

    fn traffic(&self) -> Traffic {
        self.inner.traffic()
    }

    fn answers_later(&self) -> bool {
        self.inner.answers_later()
    }

    fn send(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, CarrierError> {
        let tx = self.admit(frame.len())?;
        let prepaid = self.prepay(tx);
        let before = self.inner.traffic();
        let result = self.inner.send(frame);
        self.charge(tx, prepaid, &before);
        result
    }

    fn transmission(&self, frame_len: usize) -> Option<Transmission> {
        self.inner.transmission(frame_len)
    }

    fn may_ask_answer(&self) -> bool {
        let Some(mut ask) = self.inner.transmission(0) else {
            return self.inner.may_ask_answer();
        };
        // Only the downlink budget: no airtime of its own.
        ask.airtime_ms = 0;
        ask.may_downlink = true;
        let allowed = self.lock().admit(governor_now(), &ask) == Decision::Now;
        allowed && self.inner.may_ask_answer()
    }

    fn held_back_now(&self, frame_len: usize) -> Option<&'static str> {
        let Some(tx) = self.inner.transmission(frame_len) else {
            return self.inner.held_back_now(frame_len);
        };
        match self.lock().admit(governor_now(), &tx) {
            Decision::Now => self.inner.held_back_now(frame_len),
            refused => refused.blocking().map(|b| b.name()),
        }
    }

    fn room_for_another(&self, frame_len: usize) -> bool {
        let Some(tx) = self.inner.transmission(frame_len) else {
            return self.inner.room_for_another(frame_len);
        };
        self.lock().admits_two(governor_now(), &tx) && self.inner.room_for_another(frame_len)
    }

    fn ask_answer(&mut self) {
        if self.inner.transmission(0).is_some() {
            let (owed_before, came) = self.last_rx;
            if let Err(e) = self.lock().record_ask(governor_now(), came && !owed_before) {
                crate::journal::warn(&format!("governor: {e}"));
            }
        }
        self.inner.ask_answer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::{FairUse, GovernorConfig, Link, SubBand};

    /// A metered carrier: each frame one session, credits per 50 bytes and
    /// 100 ms of airtime per byte on EU868 g1; it counts what it was asked
    /// to send.
    #[derive(Default)]
    struct Metered {
        lorawan: bool,
        traffic: Traffic,
        frames: u32,
    }

    impl FrameCarrier for Metered {
        fn name(&self) -> &'static str {
            "metered"
        }
        fn budget(&self) -> usize {
            200
        }
        fn identifies_device(&self) -> bool {
            true
        }
        fn exchange(
            &mut self,
            frame: &[u8],
            _: &mut dyn FnMut(&[u8]) -> bool,
        ) -> Result<Vec<u8>, CarrierError> {
            self.send(frame).map(|_| Vec::new())
        }
        fn traffic(&self) -> Traffic {
            self.traffic
        }
        fn send(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, CarrierError> {
            self.frames += 1;
            self.traffic.sent += 1;
            self.traffic.sessions += 1;
            self.traffic.received += 1;
            if self.lorawan {
                self.traffic.airtime_ms += 100 * frame.len() as u64;
            } else {
                self.traffic.credits += frame.len().div_ceil(50) as u64;
            }
            Ok(vec![vec![0]])
        }
        fn transmission(&self, len: usize) -> Option<Transmission> {
            Some(if self.lorawan {
                Transmission::lorawan(
                    Link::Eu868(SubBand::G1),
                    u32::try_from(100 * len).unwrap(),
                    false,
                )
            } else {
                Transmission::sbd(u32::try_from(len.div_ceil(50)).unwrap())
            })
        }
    }

    fn governed(lorawan: bool, config: GovernorConfig) -> Governed {
        let metered = Metered {
            lorawan,
            ..Metered::default()
        };
        Governed::new(
            Box::new(metered),
            Arc::new(Mutex::new(Governor::in_memory(config))),
        )
    }

    #[test]
    fn sbd_credits_per_day_hold_back_the_session_that_would_exceed_them() {
        let mut c = governed(
            false,
            GovernorConfig {
                sbd_credits_per_day: 5,
                ..GovernorConfig::default()
            },
        );
        c.send(&[0; 100]).unwrap(); // 2 credits
        c.send(&[0; 100]).unwrap(); // 4
        let err = c.send(&[0; 100]).unwrap_err();
        assert!(
            matches!(err, CarrierError::HeldBack("sbd_credits")),
            "{err}"
        );
        assert!(err.is_retriable());
        c.send(&[0; 40]).unwrap(); // 5: still fits
        assert_eq!(
            c.traffic().credits,
            5,
            "the refused session never reached the modem"
        );
        assert_eq!(c.lock().report(governor_now()).held_back, 1);
    }

    #[test]
    fn eu868_duty_cycle_holds_back_an_uplink_past_36_s_of_airtime_an_hour() {
        let mut c = governed(
            true,
            GovernorConfig {
                fair_use: FairUse::None,
                ..GovernorConfig::default()
            },
        );
        // 20 s of airtime each: the second would make 40 s in the hour.
        c.send(&[0; 200]).unwrap();
        let err = c.send(&[0; 200]).unwrap_err();
        assert!(matches!(err, CarrierError::HeldBack("duty_cycle")), "{err}");
        assert_eq!(c.traffic().sent, 1);
    }

    #[test]
    fn airtime_is_charged_before_the_radio_keys_up_and_kept_if_it_fails() {
        /// Fails every send after reading how much airtime the governor
        /// had charged when it was called.
        struct Observer(SharedGovernor, Vec<u64>);
        impl FrameCarrier for Observer {
            fn name(&self) -> &'static str {
                "observer"
            }
            fn budget(&self) -> usize {
                200
            }
            fn identifies_device(&self) -> bool {
                true
            }
            fn exchange(
                &mut self,
                _: &[u8],
                _: &mut dyn FnMut(&[u8]) -> bool,
            ) -> Result<Vec<u8>, CarrierError> {
                unreachable!()
            }
            fn traffic(&self) -> Traffic {
                Traffic::default()
            }
            fn send(&mut self, _: &[u8]) -> Result<Vec<Vec<u8>>, CarrierError> {
                let g = self.0.lock().unwrap().report(governor_now());
                self.1.push(g.airtime_ms_24h);
                Err(CarrierError::Modem("no answer".into()))
            }
            fn transmission(&self, len: usize) -> Option<Transmission> {
                Some(Transmission::lorawan(
                    Link::Eu868(SubBand::G1),
                    u32::try_from(100 * len).unwrap(),
                    false,
                ))
            }
        }
        let g: SharedGovernor = Arc::new(Mutex::new(Governor::in_memory(GovernorConfig {
            fair_use: FairUse::None,
            ..GovernorConfig::default()
        })));
        let mut c = Governed::new(Box::new(Observer(g.clone(), Vec::new())), g.clone());
        // 20 s each: the first is charged while "on air", and stays
        // charged though it failed; so the second would pass 36 s.
        assert!(c.send(&[0; 200]).is_err());
        let err = c.send(&[0; 200]).unwrap_err();
        assert!(matches!(err, CarrierError::HeldBack("duty_cycle")), "{err}");
        assert_eq!(
            g.lock().unwrap().report(governor_now()).airtime_ms_24h,
            20_000
        );
    }

    #[test]
    fn room_for_another_frame_ends_when_the_hour_has_room_for_one() {
        let mut c = governed(
            true,
            GovernorConfig {
                fair_use: FairUse::None,
                ..GovernorConfig::default()
            },
        );
        // 10 s each: 36 s an hour is three frames and a bit.
        assert!(c.room_for_another(100));
        c.send(&[0; 100]).unwrap();
        assert!(c.room_for_another(100), "20 s of 36 after two");
        c.send(&[0; 100]).unwrap();
        assert!(!c.room_for_another(100), "a fourth would not fit");
        c.send(&[0; 100]).unwrap();
        assert!(c.send(&[0; 100]).is_err());
    }

    #[test]
    fn ttn_fair_use_stops_asking_for_answers_after_ten_but_not_sending() {
        let mut c = governed(true, GovernorConfig::default());
        for i in 0..10 {
            assert!(c.may_ask_answer(), "downlink {i}");
            c.ask_answer();
            c.send(&[0; 10]).unwrap();
        }
        assert!(!c.may_ask_answer(), "10 downlinks asked for in 24 h");
        c.send(&[0; 10]).unwrap();
    }

    #[test]
    fn unmetered_carriers_pass_through() {
        struct Free(Traffic);
        impl FrameCarrier for Free {
            fn name(&self) -> &'static str {
                "free"
            }
            fn budget(&self) -> usize {
                10
            }
            fn identifies_device(&self) -> bool {
                false
            }
            fn exchange(
                &mut self,
                _: &[u8],
                _: &mut dyn FnMut(&[u8]) -> bool,
            ) -> Result<Vec<u8>, CarrierError> {
                self.0.sent += 1;
                Ok(vec![1])
            }
            fn traffic(&self) -> Traffic {
                self.0
            }
        }
        let strict = GovernorConfig {
            sbd_credits_per_day: 1,
            ..GovernorConfig::default()
        };
        let mut c = Governed::new(
            Box::new(Free(Traffic::default())),
            Arc::new(Mutex::new(Governor::in_memory(strict))),
        );
        for _ in 0..100 {
            assert_eq!(c.exchange(&[0; 10], &mut |_| true).unwrap(), vec![1]);
        }
    }
}
