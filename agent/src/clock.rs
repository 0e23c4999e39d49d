//! Injectable wall clock, so that age-based queue eviction and scheduling can be
//! tested without sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock {
    /// Current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The production time of record `seq`, about to be appended to the
    /// queue: the time now. (Agent time also notes `seq` as the last
    /// record it stamped: a later correction knows which ones are early.)
    fn stamp(&self, seq: u64) -> u64 {
        let _ = seq;
        self.now_ms()
    }

    /// The stamp `at_ms` this clock gave record `seq`, as the queue reads
    /// it back: unchanged. (Agent time corrects stamps it learnt since
    /// were early: `agent_time/restamp.rs`.)
    fn restamp(&self, seq: u64, at_ms: u64) -> u64 {
        let _ = seq;
        at_ms
    }
}

/// The real system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ManualClock(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
            now_ms,
        )))
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Set the clock to `now_ms`, backwards too (a system clock stepped by
    /// NTP or by hand).
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
