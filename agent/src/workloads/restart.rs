//! Restarts with a back-off: a workload's `restartPolicy` says *whether*
//! a stopped container is started again, [`Backoff`] says *when*. Podman
//! is told `Never` (`manifest.rs`): on its own it restarts a crashing
//! container at once, forever (`PODMAN-4.3.md`, section 2), which on a
//! Pi Zero is a core spent on a crash loop. The same back-off spaces out
//! retries of a deployment that failed (a missing image, a refused
//! `kube play`).
//!
//! As Kubernetes' CrashLoopBackOff: the first try is at once, then the
//! delay doubles from `initial` up to `max`; a workload that ran for
//! `reset` since its last start begins again from the first delay. Time
//! is passed in (`Instant`s), so the rules are tested without sleeping.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::containers::ObservedContainer;

/// A pod's `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Start every container that stopped (Kubernetes' default).
    Always,
    /// Start containers that stopped with an error.
    OnFailure,
    /// Start nothing.
    Never,
}

impl RestartPolicy {
    /// Kubernetes' spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Always" => Self::Always,
            "OnFailure" => Self::OnFailure,
            "Never" => Self::Never,
            _ => return None,
        })
    }

    /// Whether a pod whose app containers are `containers` needs starting.
    /// A pod without containers is half made: that is the plan's business.
    pub fn wants_start(self, containers: &[ObservedContainer]) -> bool {
        match self {
            Self::Never => false,
            Self::Always => containers.iter().any(|c| !c.is_running()),
            Self::OnFailure => containers.iter().any(ObservedContainer::has_crashed),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Tries made since the last reset.
    tries: u32,
    /// When the last try was made.
    last: Instant,
}

/// Back-off state per workload (module docs).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    reset: Duration,
    entries: BTreeMap<String, Entry>,
}

impl Backoff {
    /// Delays from `initial` doubling to `max`; forgotten after `reset`
    /// without a further try.
    pub fn new(initial: Duration, max: Duration, reset: Duration) -> Self {
        Self {
            initial,
            max,
            reset,
            entries: BTreeMap::new(),
        }
    }

    /// The delay after `tries` tries (0: none yet).
    fn delay(&self, tries: u32) -> Duration {
        if tries == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (tries - 1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// When `name` may be tried next (now or earlier: at once).
    pub fn due_at(&self, name: &str, now: Instant) -> Instant {
        match self.entries.get(name) {
            None => now,
            Some(e) if now.saturating_duration_since(e.last) >= self.reset => now,
            Some(e) => e.last + self.delay(e.tries),
        }
    }

    /// Whether `name` may be tried now.
    pub fn is_due(&self, name: &str, now: Instant) -> bool {
        self.due_at(name, now) <= now
    }

    /// A try of `name` was made now.
    pub fn tried(&mut self, name: &str, now: Instant) {
        let tries = match self.entries.get(name) {
            Some(e) if now.saturating_duration_since(e.last) < self.reset => e.tries,
            _ => 0,
        };
        self.entries.insert(
            name.to_owned(),
            Entry {
                tries: tries.saturating_add(1),
                last: now,
            },
        );
    }

    /// `name` needs no more tries (it deployed, it was removed, or its
    /// configuration changed).
    pub fn forget(&mut self, name: &str) {
        self.entries.remove(name);
    }

    /// Keep only the names `keep` says yes to.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|k, _| keep(k));
    }

    /// The earliest time after `now` at which one of `names` becomes due.
    pub fn next_due<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        now: Instant,
    ) -> Option<Instant> {
        names
            .into_iter()
            .map(|n| self.due_at(n, now))
            .filter(|t| *t > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn c(state: &str, exit_code: i32) -> ObservedContainer {
        ObservedContainer {
            pod: "p".into(),
            name: "p-c".into(),
            state: state.into(),
            exit_code,
            started_at: 0,
        }
    }

    #[test]
    fn the_policy_says_whether() {
        let running = [c("running", 0)];
        let done = [c("running", 0), c("exited", 0)];
        let crashed = [c("running", 0), c("exited", 2)];
        use RestartPolicy::*;
        let table = [
            (Always, [false, true, true]),
            (OnFailure, [false, false, true]),
            (Never, [false, false, false]),
        ];
        for (policy, want) in table {
            let got = [&running[..], &done[..], &crashed[..]].map(|cs| policy.wants_start(cs));
            assert_eq!(got, want, "{policy:?}");
        }
        // A container made but never started is not a crash.
        assert!(!OnFailure.wants_start(&[c("created", 0)]));
        assert!(Always.wants_start(&[c("created", 0)]));
        assert_eq!(RestartPolicy::parse("always"), None);
    }

    #[test]
    fn first_try_at_once_then_doubling_to_the_cap_then_reset() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(10), s(60), s(600));
        let t0 = Instant::now();
        assert!(b.is_due("w", t0));
        b.tried("w", t0);
        assert_eq!(b.due_at("w", t0), t0 + s(10));
        let mut t = t0 + s(10);
        let mut delays = Vec::new();
        for _ in 0..5 {
            assert!(b.is_due("w", t));
            b.tried("w", t);
            let next = b.due_at("w", t);
            delays.push((next - t).as_secs());
            t = next;
        }
        assert_eq!(delays, [20, 40, 60, 60, 60]);
        assert_eq!(b.next_due(["w", "other"], t - s(1)), Some(t));
        // Ran for `reset` since the last try: first delay again.
        let later = t + s(600);
        assert!(b.is_due("w", later));
        b.tried("w", later);
        assert_eq!(b.due_at("w", later), later + s(10));
        b.forget("w");
        assert!(b.is_due("w", later));
    }

    proptest! {
        /// Whatever the tries, a workload waits at most `max` and the
        /// waits never shrink before a reset.
        #[test]
        fn delays_are_bounded_and_grow(gaps in proptest::collection::vec(0u64..400, 1..40)) {
            let s = Duration::from_secs;
            let mut b = Backoff::new(s(10), s(300), s(600));
            let mut t = Instant::now();
            let mut last_delay = Duration::ZERO;
            for gap in gaps {
                let due = b.due_at("w", t);
                prop_assert!(due <= t + s(300));
                t = due.max(t) + s(gap);
                let since_due = s(gap);
                b.tried("w", t);
                let delay = b.due_at("w", t) - t;
                prop_assert!(delay >= s(10) && delay <= s(300));
                if since_due + last_delay < s(600) {
                    prop_assert!(delay >= last_delay);
                }
                last_delay = delay;
            }
        }
    }
}
