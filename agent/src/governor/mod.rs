//! The transmission governor: the budgets a narrow-link carrier must keep,
//! checked before each uplink ([`Governor::admit`]) and charged after it
//! ([`Governor::record_sent`], [`Governor::record_ask`],
//! [`Governor::record_downlinks`]). Pure logic
//! over an injected time ([`Now`]: the wall clock from
//! [`Clock`](crate::clock::Clock) and the time since boot, `time.rs`),
//! with its history persisted in `<data_dir>/governor/usage` (`store.rs`),
//! so that rebooting never buys a fresh budget.
//!
//! # Budgets
//!
//! 1. **EU868 duty cycle** per sub-band ([`SubBand`]), over a *rolling
//!    hour*: an uplink is admitted only if the airtime recorded on its
//!    sub-band in the last hour plus its own stays within the sub-band's
//!    share (36 s for 1 %). ETSI EN 300 220-2 measures the duty cycle as
//!    on-air time over a one-hour observation period; checking every
//!    admission against the hour before it means *no* window of an hour
//!    ever holds more (the last uplink in any hour was checked against all
//!    the others). LoRaMac-node ≥ 4.5 instead keeps per-band *time
//!    credits* (`RegionCommon.c`: `MaxTimeCredits` = one hour, each uplink
//!    costs airtime × 1/dc, refilled continuously): a full bucket can be
//!    spent at once and refills while being spent, so an hour can hold up
//!    to about twice the share. Its older per-transmission off-time
//!    (`Toff = ToA/dc − ToA`) never exceeds but spaces every uplink out
//!    even when the hour is almost unused. The rolling hour is the
//!    regulation itself and never exceeds it. Records are stamped when the
//!    carrier reports the uplink *done*, so an uplink's whole airtime is
//!    counted in every hour it touches. A transmission longer than the
//!    whole share is [`Decision::Never`].
//! 2. **TTN fair use** (optional, [`FairUse`]): 30 s of uplink airtime and
//!    10 downlinks per device per *rolling* 24 h. Rolling rather than per
//!    UTC day: the policy is stated per 24 h; per UTC day would allow 60 s
//!    across midnight; and rolling needs no correct date, which a device
//!    without RTC may not have. Downlinks are charged to uplinks that may
//!    bring one ([`Transmission::may_downlink`]): those wait while 10
//!    arrived in the last 24 h, counting the answer still owed: a network
//!    server may bring an answer after a later uplink than the one that
//!    asked (`ledger.rs`, "Downlinks").
//! 3. **SBD credits** per rolling 24 h (`sbd_credits_per_day`, 0 =
//!    unlimited), for the same reasons.
//! 4. **US915**: no duty cycle, but an uplink longer than the 400 ms dwell
//!    time is [`Decision::Never`].
//!
//! # Time, reboots and damage
//!
//! Governor time never goes backwards (`ledger.rs`, "Time"): a clock that
//! jumps back (a Pi Zero before NTP) freezes it, so nothing unlocks, and
//! what is sent meanwhile is counted from the first reading past the mark;
//! a clock that steps forward ages the history only by the time since boot
//! (`time.rs`). Keep one `Governor` for the life of the process (like the
//! frame sender): it is cheap, and reopening it is correct but reads the
//! file again.
//! The history is bounded (128 entries, merged conservatively when full)
//! and rewritten durably after every record. A damaged usage file is
//! replaced by a history in which every budget was just spent: each link
//! waits its window's length (an hour of duty cycle, a day of fair use or
//! credits), and the reason is logged.
//!
//! # What to send when the budget is short
//!
//! [`Governor::remaining`] and [`frames_allowed`] give the prefix of a
//! window's plan (summary and urgent events first) that fits now;
//! [`Governor::held_back`] records the rest for [`GovernorReport`].

mod band;
mod config;
mod ledger;
mod policy;
pub mod sim_clock;
mod store;
#[cfg(test)]
mod tests;
mod time;

use std::path::Path;

pub use band::{
    Budget, DAY_MS, DUTY_CYCLE_WINDOW_MS, Decision, Link, SubBand, TTN_AIRTIME_MS_PER_DAY,
    TTN_DOWNLINKS_PER_DAY, Transmission, US915_DWELL_MS,
};
pub use config::{FairUse, GovernorConfig, GovernorConfigError, MAX_SBD_CREDITS_PER_DAY};
pub use ledger::{MAX_DOWNLINKS, MAX_ENTRIES};
pub use policy::{Allowance, GovernorReport, frames_allowed};
pub use store::{GovernorError, MAX_FILE_LEN, fuzz_usage_file};
pub use time::Now;

use ledger::Ledger;
use store::{Loaded, UsageFile};

/// The budgets of one device (module docs).
#[derive(Debug)]
pub struct Governor {
    config: GovernorConfig,
    ledger: Ledger,
    /// `None`: in memory only (tests, or no data directory).
    file: Option<UsageFile>,
    /// Why the usage file was not used, if it was damaged.
    damage: Option<&'static str>,
    /// The last refusal, while it may still hold.
    hold: Option<Decision>,
    /// The last wall-clock reading was behind governor time.
    wall_behind: bool,
}

impl Governor {
    /// The governor of `data_dir`, resumed from its usage file; `now` is
    /// used if the file is damaged.
    ///
    /// # Errors
    /// [`GovernorError::Io`] when the file cannot be read or, after damage,
    /// replaced.
    pub fn open(
        data_dir: &Path,
        config: GovernorConfig,
        now: Now,
    ) -> Result<Governor, GovernorError> {
        let mut file = UsageFile::new(data_dir);
        let (ledger, damage) = match file.load()? {
            Loaded::Fresh(l) | Loaded::Read(l) => (l, None),
            Loaded::Damaged(why) => {
                crate::journal::warn(&format!(
                    "governor usage file {} is damaged ({why}): \
                     every budget counts as spent for its window",
                    file.path().display()
                ));
                let l = Ledger::spent(now);
                file.store(&l)?;
                (l, Some(why))
            }
        };
        Ok(Governor {
            config,
            ledger,
            file: Some(file),
            damage,
            hold: None,
            wall_behind: false,
        })
    }

    /// A governor with no usage file (its history is lost on restart: for
    /// tests and simulations only).
    pub fn in_memory(config: GovernorConfig) -> Governor {
        Governor {
            config,
            ledger: Ledger::default(),
            file: None,
            damage: None,
            hold: None,
            wall_behind: false,
        }
    }

    /// Why the usage file was found damaged when opened, if it was.
    pub fn damage(&self) -> Option<&'static str> {
        self.damage
    }

    /// The configuration.
    pub fn config(&self) -> &GovernorConfig {
        &self.config
    }

    /// Governor time for the reading `now`.
    fn time(&mut self, now: Now) -> u64 {
        let t = self.ledger.advance(now);
        self.wall_behind = now.wall_ms < t;
        t
    }

    /// May `tx` be sent at `now`? [`Decision::NotBefore`] names the
    /// budget that waits longest; waiting until then satisfies every
    /// budget (history only leaves windows as time passes).
    pub fn admit(&mut self, now: Now, tx: &Transmission) -> Decision {
        let now = self.time(now);
        let decision = self.decide(now, tx);
        self.hold = (decision != Decision::Now).then_some(decision);
        decision
    }

    /// Would a second `tx` be admitted after `tx` itself, both at `now`?
    /// (Nothing is recorded.) A downlink it may bring is not counted twice.
    pub fn admits_two(&mut self, now: Now, tx: &Transmission) -> bool {
        let now = self.time(now);
        let two = Transmission {
            airtime_ms: tx.airtime_ms.saturating_mul(2),
            sbd_credits: tx.sbd_credits.saturating_mul(2),
            ..*tx
        };
        self.decide(now, &two) == Decision::Now
    }

    fn decide(&self, now: u64, tx: &Transmission) -> Decision {
        let l = &self.ledger;
        let airtime = u64::from(tx.airtime_ms);
        let mut waits: heapless::Vec<(u64, Budget), 4> = heapless::Vec::new();
        let mut check = |fits_at: Option<u64>, budget: Budget| {
            if let Some(at) = fits_at {
                let _ = waits.push((at, budget));
            }
        };
        match tx.link {
            Link::Us915 if tx.airtime_ms > US915_DWELL_MS => {
                return Decision::Never {
                    budget: Budget::DwellTime,
                };
            }
            Link::Eu868(band) if self.config.duty_cycle => {
                let limit = band.airtime_ms_per_hour();
                if airtime > limit {
                    return Decision::Never {
                        budget: Budget::DutyCycle,
                    };
                }
                let on = move |l: Link| l == Link::Eu868(band);
                check(
                    l.fits_at(on, DUTY_CYCLE_WINDOW_MS, limit, airtime, now),
                    Budget::DutyCycle,
                );
            }
            Link::Sbd if self.config.sbd_credits_per_day > 0 => {
                let limit = u64::from(self.config.sbd_credits_per_day);
                let credits = u64::from(tx.sbd_credits);
                if credits > limit {
                    return Decision::Never {
                        budget: Budget::SbdCredits,
                    };
                }
                let on = |l: Link| l == Link::Sbd;
                check(
                    l.fits_at(on, DAY_MS, limit, credits, now),
                    Budget::SbdCredits,
                );
            }
            _ => {}
        }
        if tx.link.is_lorawan() && self.config.fair_use == FairUse::Ttn {
            if airtime > TTN_AIRTIME_MS_PER_DAY {
                return Decision::Never {
                    budget: Budget::FairUseAirtime,
                };
            }
            check(
                l.fits_at(
                    Link::is_lorawan,
                    DAY_MS,
                    TTN_AIRTIME_MS_PER_DAY,
                    airtime,
                    now,
                ),
                Budget::FairUseAirtime,
            );
            if tx.may_downlink {
                check(
                    l.downlink_fits_at(TTN_DOWNLINKS_PER_DAY, now),
                    Budget::FairUseDownlinks,
                );
            }
        }
        // The longest wait; on a tie, the first budget checked.
        let longest = waits
            .iter()
            .fold(None::<(u64, Budget)>, |best, &(at, b)| match best {
                Some((best_at, _)) if best_at >= at => best,
                _ => Some((at, b)),
            });
        match longest {
            Some((at_ms, budget)) => Decision::NotBefore { at_ms, budget },
            None => Decision::Now,
        }
    }

    /// Charge `tx`, sent (or attempted: the radio was on) and done at
    /// `now`, and persist the history. Call it right after the modem
    /// reports the uplink done, before anything else, once per radio
    /// transmission (a modem's own retransmissions included): an uplink
    /// sent but never recorded (a crash in between) is not charged.
    ///
    /// # Errors
    /// [`GovernorError::Io`] if the usage file cannot be written (the
    /// charge is kept in memory).
    pub fn record_sent(&mut self, now: Now, tx: &Transmission) -> Result<(), GovernorError> {
        self.time(now);
        let amount = tx.amount();
        if amount > 0 {
            self.ledger.record(now, tx.link, amount);
        }
        let l = &mut self.ledger;
        l.total_airtime_ms = l.total_airtime_ms.saturating_add(tx.airtime_ms.into());
        l.total_credits = l.total_credits.saturating_add(tx.sbd_credits.into());
        self.save()
    }

    /// `n` downlinks arrived at `now`, in the receive windows of one
    /// uplink (fair use counts every one, MAC-only downlinks and acks of
    /// confirmed uplinks included); an owed answer is settled. Returns
    /// whether one was owed before, for [`record_ask`](Self::record_ask).
    ///
    /// # Errors
    /// As [`record_sent`](Self::record_sent).
    pub fn record_downlinks(&mut self, now: Now, n: u64) -> Result<bool, GovernorError> {
        let owed = self.ledger.answer_pending;
        if n == 0 {
            return Ok(owed);
        }
        self.time(now);
        for _ in 0..n {
            self.ledger.record_downlink(now);
        }
        self.ledger.answer_pending = false;
        self.ledger.total_downlinks = self.ledger.total_downlinks.saturating_add(n);
        self.save().map(|()| owed)
    }

    /// The uplink just sent asked for an answer. `answered`: a downlink
    /// arrived in its own receive windows while none was owed before, so
    /// that was the answer; otherwise the answer is owed (`ledger.rs`,
    /// "Downlinks") and counts until a downlink comes.
    ///
    /// # Errors
    /// As [`record_sent`](Self::record_sent).
    pub fn record_ask(&mut self, now: Now, answered: bool) -> Result<(), GovernorError> {
        self.time(now);
        self.ledger.answer_pending = !answered;
        self.save()
    }

    /// Note that a window held `frames` back because of `budget` (for
    /// reports; persisted with the next record).
    pub fn held_back(&mut self, frames: usize, budget: Budget) {
        if frames > 0 {
            self.ledger.held_back = self.ledger.held_back.saturating_add(frames as u64);
            self.ledger.last_blocking = Some(budget.code());
        }
    }

    /// What `link` may still spend at `now` without waiting: airtime ms
    /// (LoRaWAN) or credits (SBD), the least over its budgets; `None` when
    /// no budget meters it. Feed it to [`frames_allowed`], or use
    /// [`allowance`](Self::allowance).
    pub fn remaining(&mut self, now: Now, link: Link) -> Option<u64> {
        self.tightest(now, link).map(|(left, _)| left)
    }

    /// The least remaining amount of `link`'s budgets, and that budget.
    fn tightest(&mut self, now: Now, link: Link) -> Option<(u64, Budget)> {
        let now = self.time(now);
        let l = &self.ledger;
        let mut least: Option<(u64, Budget)> = None;
        let mut limit = |left: u64, budget: Budget| {
            if least.is_none_or(|(m, _)| left < m) {
                least = Some((left, budget));
            }
        };
        match link {
            Link::Eu868(band) if self.config.duty_cycle => {
                let used = l.used(|x| x == link, DUTY_CYCLE_WINDOW_MS, now);
                let left = band.airtime_ms_per_hour().saturating_sub(used);
                limit(left, Budget::DutyCycle);
            }
            Link::Sbd if self.config.sbd_credits_per_day > 0 => {
                let used = l.used(|x| x == Link::Sbd, DAY_MS, now);
                let left = u64::from(self.config.sbd_credits_per_day).saturating_sub(used);
                limit(left, Budget::SbdCredits);
            }
            _ => {}
        }
        if link.is_lorawan() && self.config.fair_use == FairUse::Ttn {
            let used = l.used(Link::is_lorawan, DAY_MS, now);
            limit(
                TTN_AIRTIME_MS_PER_DAY.saturating_sub(used),
                Budget::FairUseAirtime,
            );
        }
        least
    }

    /// How many of a window's `planned` frames may go at `now`, each sent
    /// as `per_frame` (the worst case of the window's frames): the head of
    /// the plan (summary and urgent events first), with the budget that
    /// holds the rest back, which is noted for the report. Each frame is
    /// still [`admit`](Self::admit)ted before it goes.
    pub fn allowance(
        &mut self,
        now: Now,
        per_frame: &Transmission,
        planned: usize,
    ) -> (Allowance, Option<Budget>) {
        let cost = u64::from(per_frame.amount());
        let tightest = self.tightest(now, per_frame.link);
        let mut allowance = frames_allowed(tightest.map(|(left, _)| left), cost, planned);
        let mut budget = tightest.filter(|_| allowance.held_back > 0).map(|(_, b)| b);
        if allowance.send > 0
            && let Some(b) = self.admit(now, per_frame).blocking()
        {
            allowance = frames_allowed(Some(0), 1, planned);
            budget = Some(b);
        }
        if let Some(b) = budget {
            self.held_back(allowance.held_back, b);
        }
        (allowance, budget)
    }

    /// The state for `describe` and status lines at `now`.
    pub fn report(&mut self, now: Now) -> GovernorReport {
        let now = self.time(now);
        let l = &self.ledger;
        let (blocking, next_allowed_ms) = match self.hold {
            Some(Decision::NotBefore { at_ms, budget }) if at_ms > now => {
                (Some(budget), Some(at_ms))
            }
            Some(Decision::Never { budget }) => (Some(budget), None),
            _ => (None, None),
        };
        GovernorReport {
            airtime_ms_24h: l.used(Link::is_lorawan, DAY_MS, now),
            credits_24h: l.used(|x| x == Link::Sbd, DAY_MS, now),
            downlinks_24h: u32::try_from(l.downlinks_in_day(now)).unwrap_or(u32::MAX),
            held_back: l.held_back,
            held_back_by: l.last_blocking.and_then(Budget::from_code),
            blocking,
            next_allowed_ms,
            clock_behind: self.wall_behind || l.behind,
        }
    }

    fn save(&mut self) -> Result<(), GovernorError> {
        match &mut self.file {
            Some(f) => f.store(&self.ledger),
            None => Ok(()),
        }
    }
}
