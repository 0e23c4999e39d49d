//! Simulated governor time, for tests and simulations that live through
//! days of radio budgets in minutes: `FLOTTA_AGENT_SIM_TIME_SCALE=<k>@<anchor>`
//! makes the governor's clocks (wall and time since boot) run `k` times
//! faster than real time from the real wall-clock instant `anchor` (ms
//! since the Unix epoch) on.
//!
//! Only the governor's notion of time is scaled: duty-cycle hours, fair-use
//! days and SBD credit days pass `k` times faster, while the airtime and
//! credits a transmission costs stay what they are. Windows, heartbeats and
//! timeouts keep real time. The anchor is fixed by the caller, not taken at
//! process start, so that an agent killed and restarted keeps one simulated
//! timeline (its persisted usage stays in the past, not in the future).
//!
//! Debug builds only: a release agent refuses to start with the variable
//! set, so that no field device ever counts its legal budgets in
//! accelerated time.

use std::sync::OnceLock;

use super::time::Now;

/// The environment variable (format `<k>@<anchor_ms>`, e.g. `720@1764650000000`).
pub const SIM_TIME_SCALE_ENV: &str = "FLOTTA_AGENT_SIM_TIME_SCALE";

/// Largest accepted speed-up (a day in 8.6 s).
const MAX_FACTOR: u64 = 10_000;

/// A speed-up of governor time from an anchor (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTimeScale {
    /// Simulated milliseconds per real millisecond.
    pub factor: u64,
    /// The real wall-clock instant (ms since the epoch) where both agree.
    pub anchor_wall_ms: u64,
}

impl SimTimeScale {
    /// Parse `<k>@<anchor_ms>`.
    ///
    /// # Errors
    /// A message naming the variable and what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("{SIM_TIME_SCALE_ENV}={text:?}: {why} (expected <k>@<anchor_ms>)");
        let (factor, anchor) = text.trim().split_once('@').ok_or_else(|| bad("no '@'"))?;
        let factor: u64 = factor.parse().map_err(|_| bad("k is not a whole number"))?;
        if !(1..=MAX_FACTOR).contains(&factor) {
            return Err(bad(&format!("k must be within 1..={MAX_FACTOR}")));
        }
        let anchor_wall_ms = anchor
            .parse()
            .map_err(|_| bad("the anchor is not milliseconds since the epoch"))?;
        Ok(Self {
            factor,
            anchor_wall_ms,
        })
    }

    /// `real` seen in simulated time: both clocks gain `(k − 1)` times the
    /// real time elapsed since the anchor (nothing before it).
    #[must_use]
    pub fn apply(&self, real: Now) -> Now {
        let elapsed = real.wall_ms.saturating_sub(self.anchor_wall_ms);
        let gain = elapsed.saturating_mul(self.factor - 1);
        Now {
            wall_ms: real.wall_ms.saturating_add(gain),
            boot_id: real.boot_id,
            since_boot_ms: real.since_boot_ms.saturating_add(gain),
        }
    }
}

static SCALE: OnceLock<Option<SimTimeScale>> = OnceLock::new();

/// Read [`SIM_TIME_SCALE_ENV`] once for this process; returns the scale in
/// force (`None`: real time).
///
/// # Errors
/// The value is malformed, or this is a release build (module docs).
pub fn install_from_env() -> Result<Option<SimTimeScale>, String> {
    let Some(raw) = std::env::var_os(SIM_TIME_SCALE_ENV) else {
        return Ok(*SCALE.get_or_init(|| None));
    };
    if !cfg!(debug_assertions) {
        return Err(format!(
            "{SIM_TIME_SCALE_ENV} is set, but only debug builds (tests, simulations) accept it: \
             a release agent counts radio budgets in real time"
        ));
    }
    let scale = SimTimeScale::parse(&raw.to_string_lossy())?;
    Ok(*SCALE.get_or_init(|| Some(scale)))
}

/// The governor's reading of now: [`Now::system`] with the installed
/// scale, if any.
#[must_use]
pub fn governor_now() -> Now {
    let real = Now::system(&crate::clock::SystemClock);
    match SCALE.get() {
        Some(Some(scale)) => scale.apply(real),
        _ => real,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            SimTimeScale::parse("720@1000"),
            Ok(SimTimeScale {
                factor: 720,
                anchor_wall_ms: 1000
            })
        );
        for bad in ["720", "0@5", "x@5", "720@", "20000@5", "-3@5"] {
            let err = SimTimeScale::parse(bad).unwrap_err();
            assert!(err.contains(SIM_TIME_SCALE_ENV), "{err}");
        }
    }

    #[test]
    fn both_clocks_run_k_times_faster_from_the_anchor() {
        let s = SimTimeScale::parse("60@10000").unwrap();
        let at = |wall, up| s.apply(Now::at(wall, 7, up));
        // Before the anchor and at it: real time.
        assert_eq!(at(9_000, 500), Now::at(9_000, 7, 500));
        assert_eq!(at(10_000, 1_500), Now::at(10_000, 7, 1_500));
        // One real second later: a simulated minute later, on both clocks.
        let a = at(10_000, 1_500);
        let b = at(11_000, 2_500);
        assert_eq!(b.wall_ms - a.wall_ms, 60_000);
        assert_eq!(b.since_boot_ms - a.since_boot_ms, 60_000);
        // Independent of when the process started: a restarted process
        // reading the same real instant sees the same simulated wall time.
        assert_eq!(at(11_000, 99).wall_ms, b.wall_ms);
    }
}
