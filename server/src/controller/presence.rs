//! Presence: whether a device is online, judged from when it was last heard
//! from and the heartbeat period it was told to use.

use std::fmt;

/// Online, offline, or never heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Presence {
    /// Heard from within `missed × period`.
    Online,
    /// Silent for longer than `missed × period`.
    Offline,
    /// Never sent anything with its own certificate.
    Unknown,
}

impl Presence {
    /// Every value, for metrics.
    pub const ALL: [Presence; 3] = [Presence::Online, Presence::Offline, Presence::Unknown];

    /// Lower-case name, as shown by `get` and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Offline => "offline",
            Presence::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Presence at `now_ms` of a device last seen at `last_seen_ms`, expected to
/// report every `period_seconds`: offline once more than
/// `missed_heartbeats` periods passed without news.
pub fn presence(
    last_seen_ms: Option<u64>,
    period_seconds: u64,
    missed_heartbeats: u32,
    now_ms: u64,
) -> Presence {
    let Some(seen) = last_seen_ms else {
        return Presence::Unknown;
    };
    let allowed_ms = period_seconds
        .saturating_mul(u64::from(missed_heartbeats))
        .saturating_mul(1000);
    if now_ms.saturating_sub(seen) > allowed_ms {
        Presence::Offline
    } else {
        Presence::Online
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_after_the_allowed_number_of_missed_periods() {
        let seen = 1_000_000;
        assert_eq!(presence(None, 60, 3, seen), Presence::Unknown);
        assert_eq!(presence(Some(seen), 60, 3, seen), Presence::Online);
        assert_eq!(
            presence(Some(seen), 60, 3, seen + 180_000),
            Presence::Online
        );
        assert_eq!(
            presence(Some(seen), 60, 3, seen + 180_001),
            Presence::Offline
        );
        assert_eq!(
            presence(Some(seen), 10, 1, seen + 10_001),
            Presence::Offline
        );
        // A clock behind the last heartbeat is not "offline".
        assert_eq!(presence(Some(seen), 60, 3, seen - 5), Presence::Online);
    }
}
