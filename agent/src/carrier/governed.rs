//! A carrier kept within the governor's budgets (`governor/`): every
//! transmission the inner carrier would make is first admitted (duty cycle,
//! fair use, credits), and what it actually spent — the airtime and
//! credits its [`Traffic`] grew by — is charged after it. A frame that asks
//! for an answer (`ask_answer`) is charged the downlink it will bring:
//! servers answer links with few downlinks only when asked. A refused transmission is [`CarrierError::HeldBack`]: the
//! window ends there, its records stay queued (the plan sends the summary
//! first, so what is held back is the newest), and the report names the
//! budget.
//!
//! Carriers without a metered cost ([`FrameCarrier::transmission`] is
//! `None`: UDP) pass through untouched.

use std::sync::{Arc, Mutex, PoisonError};

use super::{CarrierError, FrameCarrier, Traffic};
use crate::clock::SystemClock;
use crate::governor::{Decision, Governor, Now, Transmission};

/// The governor shared by the carriers of one process.
pub type SharedGovernor = Arc<Mutex<Governor>>;

/// An inner carrier behind the governor.
pub(crate) struct Governed {
    inner: Box<dyn FrameCarrier>,
    governor: SharedGovernor,
}

impl Governed {
    /// `inner`, admitted and charged by `governor`.
    pub(crate) fn new(inner: Box<dyn FrameCarrier>, governor: SharedGovernor) -> Self {
        Self { inner, governor }
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
        match g.admit(Now::system(&SystemClock), &tx) {
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

    /// Charge what the inner carrier spent since `before`.
    fn charge(&self, tx: Option<Transmission>, before: &Traffic) {
        let Some(mut tx) = tx else { return };
        let spent = self.inner.traffic().since(before);
        if spent.sent == 0 && spent.sessions == 0 {
            return;
        }
        tx.airtime_ms = u32::try_from(spent.airtime_ms).unwrap_or(u32::MAX);
        tx.sbd_credits = u32::try_from(spent.credits).unwrap_or(u32::MAX);
        let now = Now::system(&SystemClock);
        let mut g = self.lock();
        // A usage file that cannot be written is logged, not fatal: the
        // budget is still kept in memory for this process.
        if let Err(e) = g.record_sent(now, &tx) {
            eprintln!("flotta-agent: governor: {e}");
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
        let before = self.inner.traffic();
        let result = self.inner.exchange(frame, is_answer);
        self.charge(tx, &before);
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
        let before = self.inner.traffic();
        let result = self.inner.send(frame);
        self.charge(tx, &before);
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
        let allowed = self.lock().admit(Now::system(&SystemClock), &ask) == Decision::Now;
        allowed && self.inner.may_ask_answer()
    }

    fn ask_answer(&mut self) {
        if self.inner.transmission(0).is_some()
            && let Err(e) = self.lock().record_downlink(Now::system(&SystemClock))
        {
            eprintln!("flotta-agent: governor: {e}");
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
        assert_eq!(c.lock().report(Now::system(&SystemClock)).held_back, 1);
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
