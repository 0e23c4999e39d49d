//! The usage history the budgets are computed from: a bounded ring of
//! (time, link, amount) entries in time order, the last downlinks, and the
//! governor's clock (its high-water mark). Pure: no I/O, no clock reads.
//!
//! # Bounded, and conservative when full
//!
//! At most [`MAX_ENTRIES`] entries are kept (24 h of history; older ones
//! are dropped). When the ring is full, the oldest entry of the link with
//! the most entries is merged into that link's next entry: its amount moves
//! *later* in time, so it leaves every rolling window later than it really
//! would. Budgets may come back a little later than necessary, never
//! earlier. Only the last [`MAX_DOWNLINKS`] downlinks are kept (the policy
//! counts 10 per day).
//!
//! # Downlinks: counted when they arrive, plus the one owed
//!
//! The network counts a downlink when it sends it, and a network server
//! brings an answer after *some* uplink: the one that asked (a fast
//! server), or a later one — maybe hours later, asking or not. So
//! downlinks are recorded when they arrive ([`Ledger::record_downlink`]),
//! and an answer asked for but not yet seen is *owed*
//! ([`Ledger::answer_pending`]): it counts as one more downlink at the
//! current time, whatever its age, until a downlink settles it. Servers
//! replace a waiting answer with a newer one, so at most one is owed.
//!
//! # Time
//!
//! Governor time is the largest wall-clock reading seen (`high_water_ms`,
//! persisted), so a clock that goes backwards (a Pi Zero has no RTC: before
//! NTP it boots at 1970 or at fake-hwclock's last save) makes time *stand
//! still*: nothing leaves a window until the clock is past the mark again.
//! What is sent meanwhile is stamped at the mark and flagged (`behind`);
//! at the first reading past the mark those entries are re-stamped to it:
//! they were sent before that reading, so counting them from it is
//! conservative. Forward steps are limited by the time since boot
//! ([`Ledger::advance`], `time.rs`): the history moves with a step, so it
//! ages by real time only. A wall clock *ahead* of real time at boot cannot
//! be recognised: fair use and credits may then come back early by the
//! amount it is ahead (the duty cycle does not: it gets no credit for the
//! time the device was off).

use heapless::Vec;

use super::band::{DAY_MS, Link};
use super::time::Now;

/// Entries kept: at 24 h of history, merges start at about five uplinks
/// an hour.
pub const MAX_ENTRIES: usize = 128;
/// Downlinks kept (TTN allows 10 a day).
pub const MAX_DOWNLINKS: usize = 16;

/// Governor time minus time since boot, the quantity the slacks bound.
fn offset(now_ms: u64, since_boot_ms: u64) -> i64 {
    i64::try_from(i128::from(now_ms) - i128::from(since_boot_ms)).unwrap_or(i64::MAX)
}

/// One transmission (or several merged): when it ended, where, how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Governor time of the record, ms.
    pub(crate) at_ms: u64,
    /// Where it went.
    pub(crate) link: Link,
    /// Airtime in ms (LoRaWAN) or credits (SBD); `u32::MAX`: "everything"
    /// (a damaged file).
    pub(crate) amount: u32,
}

/// The usage history and the governor's clock (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Ledger {
    /// The largest wall-clock reading seen.
    pub(crate) high_water_ms: u64,
    /// Entries were stamped at `high_water_ms` while the clock read less.
    pub(crate) behind: bool,
    /// The boot of the last reading (0: none).
    pub(crate) boot_id: u128,
    /// Time since that boot at the last reading, ms.
    pub(crate) since_boot_ms: u64,
    /// Lower bound, over the EU868 entries, of (entry time − boot time it
    /// was recorded at): governor time minus boot time may not exceed it,
    /// else those entries are moved later ([`Ledger::advance`]).
    pub(crate) duty_slack: i64,
    /// The same over every entry and downlink recorded in this boot
    /// (`i64::MAX`: none).
    pub(crate) all_slack: i64,
    /// Transmissions, oldest first.
    pub(crate) entries: Vec<Entry, MAX_ENTRIES>,
    /// Downlink times, oldest first.
    pub(crate) downlinks: Vec<u64, MAX_DOWNLINKS>,
    /// An answer asked for has not arrived: one more downlink, counted at
    /// the current time (module docs).
    pub(crate) answer_pending: bool,
    /// Frames held back by a budget since the file was created.
    pub(crate) held_back: u64,
    /// The budget that held frames back last (its `Budget` code).
    pub(crate) last_blocking: Option<u8>,
    /// Lifetime airtime (ms), credits and downlinks, for reports.
    pub(crate) total_airtime_ms: u64,
    pub(crate) total_credits: u64,
    pub(crate) total_downlinks: u64,
}

impl Ledger {
    /// A ledger that behaves as if every budget had been spent at `now`
    /// (for a damaged or unreadable usage file): each link is blocked for
    /// its window's length, then the budgets come back.
    pub(crate) fn spent(now: Now) -> Self {
        let now_ms = now.wall_ms;
        let mut l = Ledger {
            high_water_ms: now_ms,
            boot_id: now.boot_id,
            since_boot_ms: now.since_boot_ms,
            duty_slack: offset(now_ms, now.since_boot_ms),
            all_slack: offset(now_ms, now.since_boot_ms),
            ..Ledger::default()
        };
        for code in 0..Link::CODES as u8 {
            let link = Link::from_code(code).expect("code in range");
            let _ = l.entries.push(Entry {
                at_ms: now_ms,
                link,
                amount: u32::MAX,
            });
        }
        while l.downlinks.push(now_ms).is_ok() {}
        l
    }

    /// Governor time for a reading (module docs, "Time"; `time.rs`).
    pub(crate) fn advance(&mut self, now: Now) -> u64 {
        let before = self.high_water_ms;
        if now.wall_ms > before {
            if self.behind {
                for e in self.entries.iter_mut().filter(|e| e.at_ms == before) {
                    e.at_ms = now.wall_ms;
                }
                for d in self.downlinks.iter_mut().filter(|d| **d == before) {
                    *d = now.wall_ms;
                }
                self.behind = false;
            }
            self.high_water_ms = now.wall_ms;
        }
        let now_ms = self.high_water_ms;
        let same_boot = self.boot_id != 0
            && now.boot_id == self.boot_id
            && now.since_boot_ms >= self.since_boot_ms;
        if !same_boot {
            // A new boot: the time off is unknown. The duty cycle gets no
            // credit for it (as if the boot began at the last mark); fair
            // use and credits take the wall clock's word.
            self.duty_slack = offset(before, 0);
            self.all_slack = i64::MAX;
            self.boot_id = now.boot_id;
            self.since_boot_ms = now.since_boot_ms;
        }
        self.since_boot_ms = self.since_boot_ms.max(now.since_boot_ms);
        let d = offset(now_ms, now.since_boot_ms);
        if d > self.all_slack {
            let by = d.abs_diff(self.all_slack);
            self.shift(by, now_ms, |_| true, true);
            self.all_slack = d;
            self.duty_slack = self.duty_slack.max(d);
        }
        if d > self.duty_slack {
            let by = d.abs_diff(self.duty_slack);
            self.shift(by, now_ms, |l| matches!(l, Link::Eu868(_)), false);
            self.duty_slack = d;
        }
        now_ms
    }

    /// Move the entries of links matching `on` (and the downlinks if
    /// `downlinks`) `by` ms later, not past `now_ms`; keeps time order.
    fn shift(&mut self, by: u64, now_ms: u64, on: impl Fn(Link) -> bool, downlinks: bool) {
        for e in self.entries.iter_mut().filter(|e| on(e.link)) {
            e.at_ms = e.at_ms.saturating_add(by).min(now_ms);
        }
        if downlinks {
            for d in self.downlinks.iter_mut() {
                *d = d.saturating_add(by).min(now_ms);
            }
        }
        self.entries.sort_unstable_by_key(|e| e.at_ms);
    }

    /// Governor time for a record on `link` (`None`: a downlink) at
    /// `now`; flags a clock behind, tightens the slacks.
    fn stamp(&mut self, now: Now, link: Option<Link>) -> u64 {
        let now_ms = self.advance(now);
        if now.wall_ms < now_ms {
            self.behind = true;
        }
        let d = offset(now_ms, now.since_boot_ms);
        self.all_slack = self.all_slack.min(d);
        if matches!(link, Some(Link::Eu868(_))) {
            self.duty_slack = self.duty_slack.min(d);
        }
        self.prune(now_ms);
        now_ms
    }

    /// Drop what is older than every window (24 h).
    fn prune(&mut self, now_ms: u64) {
        let keep = |at: u64| at.saturating_add(DAY_MS) > now_ms;
        let old = self.entries.iter().take_while(|e| !keep(e.at_ms)).count();
        if old > 0 {
            let rest: Vec<Entry, MAX_ENTRIES> = self.entries[old..].iter().copied().collect();
            self.entries = rest;
        }
        let old = self.downlinks.iter().take_while(|d| !keep(**d)).count();
        if old > 0 {
            let rest: Vec<u64, MAX_DOWNLINKS> = self.downlinks[old..].iter().copied().collect();
            self.downlinks = rest;
        }
    }

    /// Record `amount` spent on `link` at `now`.
    pub(crate) fn record(&mut self, now: Now, link: Link, amount: u32) {
        let at_ms = self.stamp(now, Some(link));
        if self.entries.is_full() {
            self.merge_one();
        }
        let _ = self.entries.push(Entry {
            at_ms,
            link,
            amount,
        });
    }

    /// Make room: merge the oldest entry of the most frequent link into
    /// that link's next entry (moves its amount later: conservative).
    fn merge_one(&mut self) {
        let mut counts = [0usize; Link::CODES];
        for e in &self.entries {
            counts[usize::from(e.link.code())] += 1;
        }
        let code = (0..Link::CODES).max_by_key(|&c| counts[c]).unwrap_or(0);
        let mut same = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| usize::from(e.link.code()) == code)
            .map(|(i, _)| i);
        if let (Some(i), Some(j)) = (same.next(), same.next()) {
            let amount = self.entries[i].amount;
            self.entries[j].amount = self.entries[j].amount.saturating_add(amount);
            self.entries.remove(i);
        } else {
            // Unreachable while MAX_ENTRIES > Link::CODES; merge into the
            // next entry whatever its link rather than lose the amount.
            let amount = self.entries[0].amount;
            self.entries[1].amount = self.entries[1].amount.saturating_add(amount);
            self.entries.remove(0);
        }
    }

    /// Record a downlink received at `now` (the oldest is forgotten when
    /// full: only the last 10 matter).
    pub(crate) fn record_downlink(&mut self, now: Now) {
        let at = self.stamp(now, None);
        if self.downlinks.is_full() {
            self.downlinks.remove(0);
        }
        let _ = self.downlinks.push(at);
    }

    /// Entries of links matching `on` within `window_ms` of `now_ms`.
    fn in_window(
        &self,
        on: impl Fn(Link) -> bool,
        window_ms: u64,
        now_ms: u64,
    ) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| on(e.link) && e.at_ms.saturating_add(window_ms) > now_ms)
    }

    /// Amount spent on links matching `on` within `window_ms` of `now_ms`.
    pub(crate) fn used(&self, on: impl Fn(Link) -> bool, window_ms: u64, now_ms: u64) -> u64 {
        self.in_window(on, window_ms, now_ms)
            .map(|e| u64::from(e.amount))
            .sum()
    }

    /// When `amount` more fits under `limit` on links matching `on` over a
    /// rolling `window_ms`: `None` if it fits now, else the first time an
    /// old enough part of the history has left the window. The caller
    /// checks `amount <= limit` first.
    pub(crate) fn fits_at(
        &self,
        on: impl Fn(Link) -> bool + Copy,
        window_ms: u64,
        limit: u64,
        amount: u64,
        now_ms: u64,
    ) -> Option<u64> {
        let mut used = self.used(on, window_ms, now_ms);
        if used.saturating_add(amount) <= limit {
            return None;
        }
        for e in self.in_window(on, window_ms, now_ms) {
            used -= u64::from(e.amount);
            if used.saturating_add(amount) <= limit {
                return Some(e.at_ms.saturating_add(window_ms));
            }
        }
        // Only reached if amount > limit (the caller's check): never.
        Some(u64::MAX)
    }

    /// Downlinks within 24 h of `now_ms`, the one owed included.
    pub(crate) fn downlinks_in_day(&self, now_ms: u64) -> usize {
        self.downlinks
            .iter()
            .filter(|d| d.saturating_add(DAY_MS) > now_ms)
            .count()
            + usize::from(self.answer_pending)
    }

    /// When one more downlink fits under `limit` per rolling 24 h (the
    /// one owed counted at `now_ms`: it leaves no window until it comes).
    pub(crate) fn downlink_fits_at(&self, limit: usize, now_ms: u64) -> Option<u64> {
        let mut recent: Vec<u64, { MAX_DOWNLINKS + 1 }> = self
            .downlinks
            .iter()
            .copied()
            .filter(|d| d.saturating_add(DAY_MS) > now_ms)
            .collect();
        if self.answer_pending {
            let _ = recent.push(now_ms);
        }
        if recent.len() < limit {
            return None;
        }
        // The oldest `recent.len() + 1 - limit` must leave the window.
        let i = recent.len() - limit;
        Some(recent[i].saturating_add(DAY_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::super::band::{DUTY_CYCLE_WINDOW_MS, SubBand};
    use super::*;

    const G1: Link = Link::Eu868(SubBand::G1);

    /// Wall and boot clocks agreeing, one boot.
    fn at(ms: u64) -> Now {
        Now::at(ms, 1, ms)
    }

    #[test]
    fn merging_keeps_the_total_and_moves_it_later() {
        let mut l = Ledger::default();
        for i in 0..(MAX_ENTRIES as u64 + 50) {
            l.record(at(1_000 + i), G1, 10);
        }
        assert_eq!(l.entries.len(), MAX_ENTRIES);
        assert_eq!(
            l.used(|_| true, DAY_MS, 2_000),
            (MAX_ENTRIES as u64 + 50) * 10
        );
        assert!(l.entries.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(l.entries[0].at_ms, 1_050, "the oldest amounts moved later");
    }

    #[test]
    fn prune_drops_only_what_left_every_window() {
        let mut l = Ledger::default();
        l.record(at(0), G1, 5);
        l.record(at(DAY_MS - 1), G1, 6);
        l.record(at(DAY_MS), G1, 7);
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.used(|_| true, DUTY_CYCLE_WINDOW_MS, DAY_MS), 13);
    }

    #[test]
    fn downlinks_fit_when_the_oldest_leaves() {
        let mut l = Ledger::default();
        for i in 0..12 {
            l.record_downlink(at(1_000 * i));
        }
        assert_eq!(l.downlinks_in_day(11_000), 12);
        assert_eq!(l.downlink_fits_at(10, 11_000), Some(2_000 + DAY_MS));
        assert_eq!(l.downlink_fits_at(13, 11_000), None);
    }

    #[test]
    fn a_forward_step_moves_the_history_with_it() {
        let mut l = Ledger::default();
        l.record(Now::at(1_000, 7, 10), G1, 100);
        // One second later (boot clock), the wall clock stepped an hour on.
        let t = l.advance(Now::at(1_000 + DUTY_CYCLE_WINDOW_MS, 7, 1_010));
        assert_eq!(
            l.used(|_| true, DUTY_CYCLE_WINDOW_MS, t),
            100,
            "still 1 s old"
        );
        assert_eq!(l.entries[0].at_ms, t - 1_000);
    }

    #[test]
    fn a_new_boot_credits_no_time_off_to_the_duty_cycle() {
        let mut l = Ledger::default();
        l.record(Now::at(1_000, 7, 10), G1, 100);
        l.record(Now::at(1_000, 7, 10), Link::Sbd, 1);
        let t = l.advance(Now::at(1_000 + DAY_MS / 2, 8, 5));
        assert_eq!(l.used(|x| x == G1, DUTY_CYCLE_WINDOW_MS, t), 100);
        assert_eq!(
            l.used(|x| x == Link::Sbd, DAY_MS / 2, t),
            0,
            "credits age by the wall clock"
        );
    }

    #[test]
    fn a_clock_behind_freezes_then_restamps() {
        let mut l = Ledger::default();
        l.record(Now::at(10_000_000, 7, 10), G1, 100);
        // Reboot at 1970: frozen at the mark, what is sent is flagged.
        l.record(Now::at(5, 8, 5), G1, 200);
        assert!(l.behind);
        assert_eq!(l.high_water_ms, 10_000_000);
        // NTP: the clock is hours later; the second entry counts from now.
        let t = l.advance(Now::at(30_000_000, 8, 60_000));
        assert!(!l.behind);
        assert_eq!(l.used(|_| true, DUTY_CYCLE_WINDOW_MS, t), 300);
    }
}
