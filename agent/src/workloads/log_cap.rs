//! Per-workload caps on log lines taken into the queue: a chatty
//! container must not evict heartbeats from the queue or spend the
//! radio's budget. Two limits: lines per second (a token bucket with one
//! second of burst) and bytes per day (a window that starts with its first
//! line). What is over either is dropped and *counted*; the count goes out
//! as one log line of its own ([`LogCap::take_report`]), so the operator
//! sees that lines were dropped and how many, never silence.
//!
//! Time is passed in, so the rules are tested without sleeping.

use std::time::{Duration, Instant};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lines per second (and the burst).
    pub lines_per_second: u32,
    /// Bytes of messages per day.
    pub bytes_per_day: u64,
}

/// Lines dropped since the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dropped {
    /// Lines.
    pub lines: u64,
    /// Their bytes.
    pub bytes: u64,
}

const DAY: Duration = Duration::from_secs(86_400);

/// One workload's cap (module docs).
#[derive(Debug, Clone)]
pub struct LogCap {
    limits: Limits,
    /// Tokens (lines) available, at `refilled`.
    tokens: f64,
    refilled: Instant,
    /// Start of the current day window and bytes taken in it.
    day_start: Instant,
    day_bytes: u64,
    dropped: Dropped,
}

impl LogCap {
    /// A full bucket and a new day at `now`.
    pub fn new(limits: Limits, now: Instant) -> Self {
        Self {
            limits,
            tokens: f64::from(limits.lines_per_second),
            refilled: now,
            day_start: now,
            day_bytes: 0,
            dropped: Dropped::default(),
        }
    }

    /// Whether a line of `bytes` may go into the queue at `now` (counted
    /// as dropped if not).
    pub fn admit(&mut self, bytes: usize, now: Instant) -> bool {
        let rate = f64::from(self.limits.lines_per_second);
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled = now;
        if now.saturating_duration_since(self.day_start) >= DAY {
            self.day_start = now;
            self.day_bytes = 0;
        }
        let bytes = bytes as u64;
        if self.tokens < 1.0 || self.day_bytes.saturating_add(bytes) > self.limits.bytes_per_day {
            self.dropped.lines += 1;
            self.dropped.bytes += bytes;
            return false;
        }
        self.tokens -= 1.0;
        self.day_bytes += bytes;
        true
    }

    /// What was dropped since the last call, if anything (then reset).
    pub fn take_report(&mut self) -> Option<Dropped> {
        let d = std::mem::take(&mut self.dropped);
        (d.lines > 0).then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LIMITS: Limits = Limits {
        lines_per_second: 5,
        bytes_per_day: 1000,
    };

    #[test]
    fn a_burst_is_cut_at_the_rate_and_the_excess_counted() {
        let t0 = Instant::now();
        let mut cap = LogCap::new(LIMITS, t0);
        let taken = (0..20).filter(|_| cap.admit(10, t0)).count();
        assert_eq!(taken, 5);
        assert_eq!(
            cap.take_report(),
            Some(Dropped {
                lines: 15,
                bytes: 150
            })
        );
        assert_eq!(cap.take_report(), None);
        // A second later the bucket is full again.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| cap.admit(10, t1)).count(), 5);
    }

    #[test]
    fn the_day_budget_holds_until_the_day_ends() {
        let t0 = Instant::now();
        let mut cap = LogCap::new(LIMITS, t0);
        let mut t = t0;
        let mut taken = 0;
        for _ in 0..30 {
            t += Duration::from_secs(1);
            taken += usize::from(cap.admit(100, t));
        }
        assert_eq!(taken, 10, "1000 bytes a day in 100-byte lines");
        assert_eq!(cap.take_report().unwrap().lines, 20);
        assert!(cap.admit(100, t0 + DAY + Duration::from_secs(1)));
    }

    proptest! {
        /// Whatever arrives, what is admitted keeps both limits and
        /// admitted + dropped is everything.
        #[test]
        fn limits_hold_and_nothing_is_unaccounted(
            lines in proptest::collection::vec((0u64..3000, 0usize..200), 1..300)
        ) {
            let t0 = Instant::now();
            let mut cap = LogCap::new(LIMITS, t0);
            let (mut admitted, mut admitted_bytes, mut total) = (Vec::new(), 0u64, 0u64);
            let mut t = t0;
            for (gap_ms, bytes) in lines {
                t += Duration::from_millis(gap_ms);
                total += 1;
                if cap.admit(bytes, t) {
                    admitted.push(t);
                    admitted_bytes += bytes as u64;
                }
            }
            let dropped = cap.take_report().unwrap_or_default();
            prop_assert_eq!(admitted.len() as u64 + dropped.lines, total);
            // Bytes: within one day window (the test spans under a day).
            prop_assert!(t - t0 >= DAY || admitted_bytes <= LIMITS.bytes_per_day);
            // Rate: any one-second window holds at most 2 × rate (burst + refill).
            for (i, start) in admitted.iter().enumerate() {
                let n = admitted[i..].iter().take_while(|x| **x - *start < Duration::from_secs(1)).count();
                prop_assert!(n <= 2 * LIMITS.lines_per_second as usize, "{n}");
            }
        }
    }
}
