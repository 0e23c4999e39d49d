//! What a window sends when the budget is short, and what the governor
//! reports.
//!
//! A frame window's plan puts the summary and urgent events first
//! (`frames/records.rs`), so holding back means sending a *prefix* of the
//! planned frames: [`frames_allowed`] says how long a prefix the remaining
//! budget pays for, and how many frames wait for a later window.

use std::fmt;

use super::band::Budget;

/// How many of a window's planned frames may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Frames to send now (the first ones of the plan).
    pub send: usize,
    /// Frames held back for a later window.
    pub held_back: usize,
}

/// How many of `planned` frames, each costing `per_frame_cost` (airtime
/// ms or credits, the worst case of the window's frames), fit in
/// `remaining` (`None`: unmetered). A cost of 0 is free.
pub fn frames_allowed(remaining: Option<u64>, per_frame_cost: u64, planned: usize) -> Allowance {
    let send = match (remaining, per_frame_cost) {
        (None, _) | (_, 0) => planned,
        (Some(r), c) => usize::try_from(r / c).unwrap_or(usize::MAX).min(planned),
    };
    Allowance {
        send,
        held_back: planned - send,
    }
}

/// The governor's state for `describe` and status lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GovernorReport {
    /// LoRaWAN uplink airtime in the last 24 h, ms.
    pub airtime_ms_24h: u64,
    /// Iridium credits in the last 24 h.
    pub credits_24h: u64,
    /// Downlinks in the last 24 h.
    pub downlinks_24h: u32,
    /// Frames held back since the usage file was created.
    pub held_back: u64,
    /// The budget that held frames back last.
    pub held_back_by: Option<Budget>,
    /// The budget that held back the last refused transmission, while it
    /// still does.
    pub blocking: Option<Budget>,
    /// When the last refused transmission may go (governor time, ms);
    /// `None` if nothing waits, or if it never fits.
    pub next_allowed_ms: Option<u64>,
    /// The wall clock reads less than the governor's time (no RTC, NTP not
    /// yet synchronised): budgets do not come back until it catches up.
    pub clock_behind: bool,
}

impl fmt::Display for GovernorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "airtime {} ms/24h, credits {}/24h, downlinks {}/24h, held back {}",
            self.airtime_ms_24h, self.credits_24h, self.downlinks_24h, self.held_back
        )?;
        if let Some(b) = self.blocking {
            write!(f, ", blocked by {}", b.name())?;
            match self.next_allowed_ms {
                Some(at) => write!(f, " until {at} ms")?,
                None => write!(f, " (never fits)")?,
            }
        }
        if self.clock_behind {
            write!(f, ", clock behind")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_is_a_prefix() {
        assert_eq!(
            frames_allowed(None, 500, 4),
            Allowance {
                send: 4,
                held_back: 0
            }
        );
        assert_eq!(
            frames_allowed(Some(1_200), 500, 4),
            Allowance {
                send: 2,
                held_back: 2
            }
        );
        assert_eq!(
            frames_allowed(Some(0), 500, 4),
            Allowance {
                send: 0,
                held_back: 4
            }
        );
        assert_eq!(
            frames_allowed(Some(0), 0, 4),
            Allowance {
                send: 4,
                held_back: 0
            }
        );
        assert_eq!(
            frames_allowed(Some(u64::MAX), 1, 3),
            Allowance {
                send: 3,
                held_back: 0
            }
        );
    }

    #[test]
    fn report_line() {
        let r = GovernorReport {
            airtime_ms_24h: 1_500,
            held_back: 2,
            blocking: Some(Budget::DutyCycle),
            next_allowed_ms: Some(42),
            ..GovernorReport::default()
        };
        assert_eq!(
            r.to_string(),
            "airtime 1500 ms/24h, credits 0/24h, downlinks 0/24h, held back 2, \
             blocked by duty_cycle until 42 ms"
        );
    }
}
