//! A change of agent time the server must hear of, and the event that
//! tells it: `ClockCorrected` (agent time jumped forward: the server's
//! `Date`, or a system clock stepped forward) or `ClockAhead` (the server
//! says agent time is ahead; nothing is moved back).
//!
//! The message names the sequence range that carries early stamps (the
//! records queued while the clock was unconfirmed) and by how much. Those
//! still queued are not rewritten: their stamps are corrected as they are
//! uploaded (`restamp.rs`); ones sent before the correction keep theirs,
//! and the range lets the server (or whoever reads the events) place them.

use flotta_proto::payload::{Event, Level, Payload};

use super::civil::rfc3339;
use super::restamp::Restamp;

/// What moved agent time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionKind {
    /// The server's `Date` was ahead: agent time jumped to it.
    ServerDate,
    /// The system clock stepped forward past agent time (NTP arrived).
    SystemStep,
    /// The server's `Date` is behind agent time: reported, not corrected.
    Ahead,
}

/// One correction (see [`CorrectionKind`]); times in ms since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// What happened.
    pub kind: CorrectionKind,
    /// Agent time before.
    pub from_ms: u64,
    /// The time learnt (the server's, or the system clock's).
    pub to_ms: u64,
    /// The records stamped early by this correction's jump, if any was
    /// queued while the clock was unconfirmed (corrected on upload).
    pub restamp: Option<Restamp>,
}

impl Correction {
    /// Whole seconds between the two times.
    pub fn seconds(&self) -> u64 {
        self.to_ms.abs_diff(self.from_ms) / 1_000
    }

    /// The event telling the server.
    pub fn event(&self) -> Payload {
        let n = self.seconds();
        let (from, to) = (rfc3339(self.from_ms), rfc3339(self.to_ms));
        let range = match self.restamp {
            Some(r) => format!(
                "; records seq {}..={} stamped at or before {from} are {n} s early: \
                 those still queued are corrected on upload (+{} ms), ones already sent are not",
                r.first_seq, r.last_seq, r.delta_ms
            ),
            None => "; no queued record carries an early stamp".into(),
        };
        let (reason, message) = match self.kind {
            CorrectionKind::ServerDate => (
                "ClockCorrected",
                format!("clock was {n} s behind the server; corrected from {from} to {to}{range}"),
            ),
            CorrectionKind::SystemStep => (
                "ClockCorrected",
                format!(
                    "system clock stepped forward {n} s; agent time corrected from {from} to {to}{range}"
                ),
            ),
            CorrectionKind::Ahead => (
                "ClockAhead",
                format!(
                    "clock is {n} s ahead of the server ({from} here, {to} there); \
                     not corrected: record stamps never go backwards"
                ),
            ),
        };
        Payload::Event(Event {
            reason: reason.into(),
            message,
            level: Level::Warn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(p: &Payload) -> (&str, &str) {
        match p {
            Payload::Event(e) => (e.reason.as_str(), e.message.as_str()),
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn events_name_the_jump_and_the_range() {
        let c = Correction {
            kind: CorrectionKind::ServerDate,
            from_ms: 1_700_000_000_000,
            to_ms: 1_700_000_600_500,
            restamp: Some(Restamp {
                first_seq: 40,
                last_seq: 44,
                at_or_before_ms: 1_700_000_000_000,
                delta_ms: 600_500,
            }),
        };
        let e = c.event();
        assert_eq!(
            message(&e),
            (
                "ClockCorrected",
                "clock was 600 s behind the server; corrected from 2023-11-14T22:13:20Z to \
                 2023-11-14T22:23:20Z; records seq 40..=44 stamped at or before \
                 2023-11-14T22:13:20Z are 600 s early: those still queued are corrected on \
                 upload (+600500 ms), ones already sent are not"
            )
        );
        let none = Correction {
            restamp: None,
            ..c.clone()
        };
        assert!(
            message(&none.event())
                .1
                .ends_with("no queued record carries an early stamp")
        );
        let ahead = Correction {
            kind: CorrectionKind::Ahead,
            from_ms: 1_700_000_600_000,
            to_ms: 1_700_000_000_000,
            restamp: None,
        };
        let e = ahead.event();
        let (reason, msg) = message(&e);
        assert_eq!(reason, "ClockAhead");
        assert!(msg.starts_with("clock is 600 s ahead"), "{msg}");
    }
}
