//! Scripted outages: when, in simulated time since the link started, it is down.

use std::time::Duration;

/// One outage: the link is down for `start <= t < start + duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// Simulated time since the link started at which the outage begins.
    pub start: Duration,
    /// How long it lasts, in simulated time.
    pub duration: Duration,
}

impl Outage {
    /// Simulated time at which the link comes back (saturating).
    #[must_use]
    pub fn end(&self) -> Duration {
        self.start.saturating_add(self.duration)
    }
}

/// A script of outages in simulated time; empty means always up.
///
/// Overlapping or touching outages merge into one, so transitions alternate
/// strictly between down and up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Sorted by start, disjoint and not touching, none empty.
    outages: Vec<Outage>,
}

impl Schedule {
    /// A schedule with no outages.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an outage: down from `start` for `duration` (e.g. "down from
    /// t = 10 s for 2 h"). An empty duration adds nothing.
    #[must_use]
    pub fn down(mut self, start: Duration, duration: Duration) -> Self {
        if duration.is_zero() {
            return self;
        }
        self.outages.push(Outage { start, duration });
        self.outages.sort_by_key(|outage| outage.start);
        let mut merged: Vec<Outage> = Vec::with_capacity(self.outages.len());
        for outage in self.outages.drain(..) {
            match merged.last_mut() {
                Some(last) if outage.start <= last.end() => {
                    let end = last.end().max(outage.end());
                    last.duration = end.saturating_sub(last.start);
                }
                _ => merged.push(outage),
            }
        }
        self.outages = merged;
        self
    }

    /// Adds `count` outages of `duration`, the first at `first`, then one
    /// every `period` (e.g. a nightly 30-minute outage for a week).
    #[must_use]
    pub fn down_every(
        mut self,
        first: Duration,
        period: Duration,
        duration: Duration,
        count: u32,
    ) -> Self {
        for k in 0..count {
            let Some(start) = period
                .checked_mul(k)
                .and_then(|offset| first.checked_add(offset))
            else {
                break;
            };
            self = self.down(start, duration);
        }
        self
    }

    /// The merged outages, sorted by start.
    #[must_use]
    pub fn outages(&self) -> &[Outage] {
        &self.outages
    }

    /// Whether the link is scripted to be down at simulated time `t`.
    #[must_use]
    pub fn is_down_at(&self, t: Duration) -> bool {
        let started = self.outages.partition_point(|outage| outage.start <= t);
        started > 0
            && self
                .outages
                .get(started - 1)
                .is_some_and(|outage| t < outage.end())
    }

    /// The first simulated time after `t` at which [`Self::is_down_at`]
    /// changes; `None` if it never does (an outage reaching `Duration::MAX`
    /// never ends).
    #[must_use]
    pub fn next_change_after(&self, t: Duration) -> Option<Duration> {
        let started = self.outages.partition_point(|outage| outage.start <= t);
        if started > 0
            && let Some(current) = self.outages.get(started - 1)
            && t < current.end()
        {
            return (current.end() < Duration::MAX).then(|| current.end());
        }
        self.outages.get(started).map(|next| next.start)
    }

    /// Total scripted downtime within simulated `0..t`.
    #[must_use]
    pub fn downtime_until(&self, t: Duration) -> Duration {
        self.outages
            .iter()
            .take_while(|outage| outage.start < t)
            .map(|outage| outage.end().min(t).saturating_sub(outage.start))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn one_outage_has_two_transitions() {
        let schedule = Schedule::new().down(s(10), s(7200));
        assert!(!schedule.is_down_at(s(9)));
        assert!(schedule.is_down_at(s(10)));
        assert!(schedule.is_down_at(s(7209)));
        assert!(!schedule.is_down_at(s(7210)));
        assert_eq!(schedule.next_change_after(s(0)), Some(s(10)));
        assert_eq!(schedule.next_change_after(s(10)), Some(s(7210)));
        assert_eq!(schedule.next_change_after(s(7210)), None);
    }

    #[test]
    fn overlapping_and_touching_outages_merge() {
        let schedule = Schedule::new()
            .down(s(20), s(10))
            .down(s(0), s(5))
            .down(s(5), s(5))
            .down(s(25), s(10));
        assert_eq!(
            schedule.outages(),
            [
                Outage {
                    start: s(0),
                    duration: s(10)
                },
                Outage {
                    start: s(20),
                    duration: s(15)
                },
            ]
        );
    }

    #[test]
    fn endless_outage_has_no_end_transition() {
        let schedule = Schedule::new().down(s(1), Duration::MAX);
        assert!(schedule.is_down_at(Duration::MAX - s(1)));
        assert_eq!(schedule.next_change_after(s(2)), None);
    }

    #[test]
    fn periodic_outages_and_downtime() {
        let day = s(86_400);
        let schedule = Schedule::new().down_every(s(7200), day, s(1800), 7);
        assert_eq!(schedule.outages().len(), 7);
        assert!(schedule.is_down_at(day * 3 + s(7200)));
        assert_eq!(schedule.downtime_until(day * 7), s(1800) * 7);
        assert_eq!(schedule.downtime_until(s(7200) + s(60)), s(60));
        assert_eq!(schedule.downtime_until(s(7200)), Duration::ZERO);
    }

    #[test]
    fn zero_length_outages_are_ignored() {
        assert!(
            Schedule::new()
                .down(s(3), Duration::ZERO)
                .outages()
                .is_empty()
        );
    }

    proptest! {
        /// The merged schedule agrees with the naive "any outage covers t"
        /// reading at every point, and its transitions are exactly the points
        /// where that reading changes.
        #[test]
        fn matches_naive_model(raw in proptest::collection::vec((0u64..200, 0u64..40), 0..12)) {
            let schedule = raw.iter().fold(Schedule::new(), |acc, &(start, len)| acc.down(s(start), s(len)));
            let naive = |t: u64| raw.iter().any(|&(start, len)| start <= t && t < start + len);
            for t in 0..260 {
                prop_assert_eq!(schedule.is_down_at(s(t)), naive(t), "t = {}", t);
                let expected = (t + 1..260).find(|&u| naive(u) != naive(t)).map(s);
                prop_assert_eq!(schedule.next_change_after(s(t)), expected, "t = {}", t);
            }
            let naive_downtime = (0..260).filter(|&t| naive(t)).count() as u64;
            prop_assert_eq!(schedule.downtime_until(s(260)), s(naive_downtime));
        }
    }
}
