//! Packing policy for narrow links: which log records travel in frames
//! (`min_log_level`) and how long an event's or a log line's message may be
//! there (`max_text_bytes`). A [`PackPolicy`] is built from a carrier's
//! section (`[udp]` today; LoRaWAN and SBD sections can reuse the same two
//! keys), never read from it here.
//!
//! - A log line below `min_log_level` does not travel in frames: the plan
//!   leaves it for TLS when a TLS carrier is configured (like a record above
//!   `max_record_bytes`), and discards it otherwise (`records.rs`).
//! - A message longer than `max_text_bytes` (0: no limit) is cut at a UTF-8
//!   boundary to at most that many bytes, a trailing `…` (3 bytes) counted
//!   inside the limit, and the payload re-encoded. The queued record is not
//!   rewritten: the cut is a pure function of the record's bytes and the
//!   limit, so every re-pack and retransmission carries identical bytes.
//!   An event's reason and level, and a log line's source and level, are
//!   never cut; heartbeats and summaries are never touched.

use std::borrow::Cow;

use flotta_proto::payload::{Level, Payload};
use flotta_proto::record::RecordClass;
use serde::Deserialize;

/// The lowest log level that travels in frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MinLogLevel {
    /// Every log line.
    #[default]
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl MinLogLevel {
    /// Its name in the configuration and in logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// Whether a log line at `level` travels.
    #[must_use]
    pub fn admits(self, level: Level) -> bool {
        let rank = match level {
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        };
        rank >= self
    }
}

/// What a narrow link carries of the queue's log lines and events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackPolicy {
    /// Log lines below this level do not travel in frames.
    pub min_log_level: MinLogLevel,
    /// Longest message of an event or a log line in frames, in bytes
    /// (0: no limit).
    pub max_text_bytes: usize,
}

/// The ellipsis that ends a cut message (3 bytes in UTF-8).
pub(crate) const ELLIPSIS: &str = "…";

impl PackPolicy {
    /// What travels for a queue record of `class` with `payload`: `None`
    /// for a log line below the level, else the payload with its message
    /// cut (borrowed as it is when nothing is cut or it does not decode).
    pub(crate) fn apply<'a>(&self, class: RecordClass, payload: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let limit = self.max_text_bytes;
        let interesting = match class {
            RecordClass::Log => self.min_log_level != MinLogLevel::Info || limit > 0,
            RecordClass::Event => limit > 0,
            RecordClass::Heartbeat => false,
        };
        if !interesting {
            return Some(Cow::Borrowed(payload));
        }
        let Ok(mut decoded) = Payload::decode(payload) else {
            return Some(Cow::Borrowed(payload));
        };
        let message = match (&mut decoded, class) {
            (Payload::Log(l), RecordClass::Log) => {
                if !self.min_log_level.admits(l.level) {
                    return None;
                }
                &mut l.message
            }
            (Payload::Event(e), RecordClass::Event) => &mut e.message,
            _ => return Some(Cow::Borrowed(payload)),
        };
        let Some(text) = cut(message, limit) else {
            return Some(Cow::Borrowed(payload));
        };
        *message = text;
        Some(Cow::Owned(decoded.encode()))
    }
}

/// `text` cut to at most `max` bytes at a character boundary, ending in
/// [`ELLIPSIS`] (inside the limit); `None` when it fits (or `max` is 0: no
/// limit). Below 3 bytes there is no room for the ellipsis: plain cut.
pub(crate) fn cut(text: &str, max: usize) -> Option<String> {
    if max == 0 || text.len() <= max {
        return None;
    }
    if max < ELLIPSIS.len() {
        return Some(text[..floor_boundary(text, max)].to_owned());
    }
    let keep = floor_boundary(text, max - ELLIPSIS.len());
    Some(format!("{}{ELLIPSIS}", &text[..keep]))
}

/// The largest character boundary of `text` at or below `at` (the MSRV
/// predates `str::floor_char_boundary`).
fn floor_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use flotta_proto::payload::{Event, LogLine};

    use super::*;

    #[test]
    fn cuts_at_a_character_boundary_inside_the_limit() {
        assert_eq!(cut("short", 0), None);
        assert_eq!(cut("short", 5), None, "exactly at the limit: untouched");
        assert_eq!(cut("abcdefgh", 6).as_deref(), Some("abc…"));
        // "é" is 2 bytes, "€" 3: the limit falls inside them.
        let text = "aé€€€";
        for max in 4..text.len() {
            let c = cut(text, max).unwrap();
            assert!(c.len() <= max && c.ends_with(ELLIPSIS), "{max}: {c:?}");
            assert!(text.starts_with(c.trim_end_matches(ELLIPSIS)));
        }
        assert_eq!(cut(text, 7).as_deref(), Some("aé…"), "not half a €");
        assert_eq!(cut(text, 2).as_deref(), Some("a"), "no room for …");
    }

    #[test]
    fn levels_filter_logs_only() {
        let log = |level| {
            Payload::Log(LogLine {
                source: "s".into(),
                level,
                message: "m".into(),
            })
            .encode()
        };
        let warn = PackPolicy {
            min_log_level: MinLogLevel::Warn,
            max_text_bytes: 0,
        };
        assert!(warn.apply(RecordClass::Log, &log(Level::Info)).is_none());
        assert!(warn.apply(RecordClass::Log, &log(Level::Warn)).is_some());
        let info_event = Payload::Event(Event {
            reason: "R".into(),
            message: "m".into(),
            level: Level::Info,
        })
        .encode();
        let sent = warn.apply(RecordClass::Event, &info_event).unwrap();
        assert!(matches!(sent, Cow::Borrowed(_)), "events are not filtered");
        assert!(!MinLogLevel::Error.admits(Level::Warn));
        assert!(MinLogLevel::Info.admits(Level::Info));
        // Undecodable bytes travel as they are.
        assert_eq!(
            warn.apply(RecordClass::Log, b"\xff\xff").as_deref(),
            Some(&b"\xff\xff"[..])
        );
    }
}
