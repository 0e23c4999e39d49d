//! The receiver's replay window (one per device, direction and epoch): the
//! highest counter accepted and a 64-bit bitmap of the 64 counters ending at
//! it (bit i = counter `highest - i` accepted).
//!
//! A counter is [`Fresh`](Verdict::Fresh) (never accepted: store it),
//! [`Duplicate`](Verdict::Duplicate) (accepted before: acknowledge again,
//! store nothing) or [`TooOld`](Verdict::TooOld) (64 or more below the
//! highest: the window cannot tell, so drop it without acking; the sender
//! re-packs unacked records into new frames with new counters).
//!
//! Use it only after [`open`](super::open) succeeded: marking counters of
//! unauthenticated frames would let anyone push the window forward. The
//! server persists [`ReplayWindow::parts`] in the same transaction as the
//! records a frame carried, so a crash can neither lose nor double a frame.

use super::{Ack, COUNTER_MAX};

/// How many counters the window remembers below the highest one (inclusive).
pub const REPLAY_WINDOW: u32 = 64;

/// What a received counter is to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Never accepted before: process and store the frame.
    Fresh,
    /// Accepted before: acknowledge it again, store nothing.
    Duplicate,
    /// Below the window: drop it (without acknowledging).
    TooOld,
}

/// A sliding replay window of [`REPLAY_WINDOW`] counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReplayWindow {
    /// The highest accepted counter and the bitmap ending at it.
    state: Option<(u32, u64)>,
}

impl ReplayWindow {
    /// An empty window: every counter is fresh.
    #[must_use]
    pub const fn new() -> Self {
        Self { state: None }
    }

    /// Rebuild a window from persisted [`parts`](Self::parts). Bit 0 (the
    /// highest counter itself) is always set.
    #[must_use]
    pub const fn from_parts(parts: Option<(u32, u64)>) -> Self {
        match parts {
            Some((highest, bitmap)) => Self {
                state: Some((highest, bitmap | 1)),
            },
            None => Self { state: None },
        }
    }

    /// The state to persist: the highest accepted counter and the bitmap.
    #[must_use]
    pub const fn parts(&self) -> Option<(u32, u64)> {
        self.state
    }

    /// The highest counter accepted so far.
    #[must_use]
    pub fn highest(&self) -> Option<u32> {
        self.state.map(|(h, _)| h)
    }

    /// What `counter` is, without changing the window.
    #[must_use]
    pub const fn check(&self, counter: u32) -> Verdict {
        let Some((highest, bitmap)) = self.state else {
            return Verdict::Fresh;
        };
        if counter > highest {
            return Verdict::Fresh;
        }
        let behind = highest - counter;
        if behind >= REPLAY_WINDOW {
            Verdict::TooOld
        } else if bitmap & (1 << behind) != 0 {
            Verdict::Duplicate
        } else {
            Verdict::Fresh
        }
    }

    /// Record `counter` as accepted (no effect if it is too old).
    pub const fn mark(&mut self, counter: u32) {
        self.state = Some(match self.state {
            None => (counter, 1),
            Some((highest, bitmap)) if counter > highest => {
                let ahead = counter - highest;
                let shifted = if ahead >= REPLAY_WINDOW {
                    0
                } else {
                    bitmap << ahead
                };
                (counter, shifted | 1)
            }
            Some((highest, bitmap)) => {
                let behind = highest - counter;
                if behind >= REPLAY_WINDOW {
                    (highest, bitmap)
                } else {
                    (highest, bitmap | (1 << behind))
                }
            }
        });
    }

    /// The cumulative [`Ack`] this window answers, given the sender's
    /// low-water mark (every counter below it is settled by the sender).
    ///
    /// `below` is the lowest counter at or above the low-water mark and the
    /// window's floor (counters 64 or more below the highest can never be
    /// stored again: settled) that was not accepted; the bitmap says which
    /// of the 32 counters above it were. Sound: it never acknowledges a
    /// counter at or above that floor that was not accepted.
    #[must_use]
    pub fn ack(&self, low_water: u32) -> Ack {
        let low_water = low_water.min(COUNTER_MAX + 1);
        let Some((highest, bitmap)) = self.state else {
            return Ack {
                below: low_water,
                bitmap: 0,
            };
        };
        let seen = |c: u32| {
            c <= highest && highest - c < REPLAY_WINDOW && bitmap & (1 << (highest - c)) != 0
        };
        let floor = low_water.max(highest.saturating_sub(REPLAY_WINDOW - 1));
        if floor > highest {
            return Ack {
                below: floor,
                bitmap: 0,
            };
        }
        let mut below = floor;
        while below <= highest && seen(below) {
            below += 1;
        }
        let mut bits = 0u32;
        for i in 0..32u32 {
            let c = below.saturating_add(1 + i);
            if c <= highest && seen(c) {
                bits |= 1 << i;
            }
        }
        Ack {
            below,
            bitmap: bits,
        }
    }

    /// [`check`](Self::check), and [`mark`](Self::mark) if fresh.
    pub const fn check_and_mark(&mut self, counter: u32) -> Verdict {
        let verdict = self.check(counter);
        if let Verdict::Fresh = verdict {
            self.mark(counter);
        }
        verdict
    }
}
