//! Simulated time shared by a test and the agents it runs: `factor`
//! simulated seconds per real second from the moment it starts, the
//! agents' governors told the same through `FLOTTA_AGENT_SIM_TIME_SCALE`
//! (debug agents only), so that a day of duty-cycle hours, fair-use days
//! and Iridium credit days passes in minutes while the test measures the
//! radio on the same clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::procs::AgentProc;

/// Simulated time (module docs).
#[derive(Debug)]
pub struct SimTime {
    /// Simulated seconds per real second.
    pub factor: u32,
    /// When simulated time 0 was, in real time.
    pub start: Instant,
    anchor_wall_ms: u64,
}

impl SimTime {
    /// Simulated time from now on, `factor` times faster than real time.
    #[must_use]
    pub fn start(factor: u32) -> SimTime {
        let anchor_wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        SimTime {
            factor,
            start: Instant::now(),
            anchor_wall_ms,
        }
    }

    /// Put `agent`'s governor on this clock.
    pub fn apply(&self, agent: &mut AgentProc) {
        agent.set_env(
            "FLOTTA_AGENT_SIM_TIME_SCALE",
            &format!("{}@{}", self.factor, self.anchor_wall_ms),
        );
    }

    /// Real time lasting `simulated`.
    #[must_use]
    pub fn real(&self, simulated: Duration) -> Duration {
        simulated / self.factor
    }

    /// Simulated time elapsed at `at`.
    #[must_use]
    pub fn sim_at(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start) * self.factor
    }

    /// Simulated time elapsed now.
    #[must_use]
    pub fn now(&self) -> Duration {
        self.sim_at(Instant::now())
    }
}

/// The most of `amount` in any rolling `window` of simulated time, each
/// window starting at an entry: `entries` are (when, amount) in time order
/// (airtime per uplink, credits per session, 1 per downlink).
#[must_use]
pub fn busiest<T: Copy + std::iter::Sum<T> + Ord + Default>(
    entries: &[(Duration, T)],
    window: Duration,
) -> T {
    (0..entries.len())
        .map(|i| {
            entries[i..]
                .iter()
                .take_while(|(at, _)| *at < entries[i].0 + window)
                .map(|&(_, amount)| amount)
                .sum()
        })
        .max()
        .unwrap_or_default()
}
