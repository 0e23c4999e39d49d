//! The governor's notion of "now": the wall clock (what windows and
//! reports speak in) and the time since boot with the boot's identity
//! (which never jumps), so that clock steps cannot unlock a budget.
//!
//! Governor time is the largest wall-clock reading seen (`ledger.rs`).
//! Between two readings of the same boot it may not *age the history* by
//! more than the time since boot advanced: when the wall clock steps
//! forward (NTP correcting a Pi Zero that booted without RTC), the history
//! moves forward with it, so every entry's age stays the real time since
//! it was recorded. When the wall clock steps back, governor time stands
//! still (nothing ages at all) until the clock is past its mark again.
//!
//! Across a reboot the time since boot starts again and the time the
//! device was off is unknown. The regulatory budget (EU868 duty cycle)
//! gets no credit for it: its history resumes ageing at boot, so a device
//! that spent its hour just before a power cut waits up to an hour after
//! it. The contractual budgets (fair use, credits) are credited with the
//! wall-clock difference, which is right with an RTC or NTP and short of
//! the truth when the clock boots behind (fake-hwclock).

use std::sync::OnceLock;
use std::time::Instant;

use crate::clock::Clock;

/// A reading of the clocks the governor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Wall clock, ms since the Unix epoch ([`Clock::now_ms`]).
    pub wall_ms: u64,
    /// Identity of the boot (Linux `boot_id`); 0 is never a known boot.
    pub boot_id: u128,
    /// Time since that boot, ms (never jumps; includes suspend).
    pub since_boot_ms: u64,
}

impl Now {
    /// A reading for tests and simulations: boot `boot_id`, `since_boot_ms`
    /// into it, the wall clock at `wall_ms`.
    pub fn at(wall_ms: u64, boot_id: u128, since_boot_ms: u64) -> Now {
        Now {
            wall_ms,
            boot_id,
            since_boot_ms,
        }
    }

    /// The system's reading: `clock` for the wall, `/proc/uptime` and
    /// `/proc/sys/kernel/random/boot_id` for the boot. Without `/proc`,
    /// the process stands for the boot (its start, from a monotonic clock),
    /// which only costs credit for the time between two processes.
    pub fn system(clock: &impl Clock) -> Now {
        let wall_ms = clock.now_ms();
        match (boot_id(), uptime_ms()) {
            (Some(boot_id), Some(since_boot_ms)) => Now {
                wall_ms,
                boot_id,
                since_boot_ms,
            },
            _ => {
                static START: OnceLock<(u128, Instant)> = OnceLock::new();
                let (id, start) = START.get_or_init(|| {
                    let id = (u128::from(std::process::id()) << 64) | u128::from(wall_ms) | 1;
                    (id, Instant::now())
                });
                Now {
                    wall_ms,
                    boot_id: *id,
                    since_boot_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            }
        }
    }
}

/// The kernel's boot id (a UUID; hyphens removed), if readable.
fn boot_id() -> Option<u128> {
    let s = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    parse_boot_id(&s)
}

fn parse_boot_id(s: &str) -> Option<u128> {
    let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok().filter(|id| *id != 0)
}

/// Seconds since boot (`/proc/uptime`, CLOCK_BOOTTIME) in ms, if readable.
fn uptime_ms() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/uptime").ok()?;
    parse_uptime_ms(&s)
}

fn parse_uptime_ms(s: &str) -> Option<u64> {
    let first = s.split_whitespace().next()?;
    let (secs, frac) = first.split_once('.').unwrap_or((first, "0"));
    let secs: u64 = secs.parse().ok()?;
    let frac = format!("{frac:0<3}");
    let ms: u64 = frac.get(..3)?.parse().ok()?;
    secs.checked_mul(1_000)?.checked_add(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(parse_uptime_ms("12345.67 54321.00\n"), Some(12_345_670));
        assert_eq!(parse_uptime_ms("3 4"), Some(3_000));
        assert_eq!(parse_uptime_ms("x"), None);
        assert_eq!(
            parse_boot_id("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\n"),
            Some(0x0b1c2d3e_4f50_6172_8394_a5b6c7d8e9f0)
        );
        assert_eq!(parse_boot_id("short"), None);
    }

    #[test]
    fn system_reading_is_consistent() {
        let clock = crate::clock::ManualClock::new(5);
        let a = Now::system(&clock);
        let b = Now::system(&clock);
        assert_eq!(a.wall_ms, 5);
        assert_eq!(a.boot_id, b.boot_id);
        assert_ne!(a.boot_id, 0);
        assert!(b.since_boot_ms >= a.since_boot_ms);
    }
}
