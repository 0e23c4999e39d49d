//! Presence: whether a device is online, judged from when it was last heard
//! from and the interval it is expected to be heard from in: the longer of
//! the heartbeat period it was told to use and the upload interval it
//! reported (an agent on a narrow link queues its heartbeats and uploads
//! them in one window, e.g. hourly).

use std::fmt;

/// Online, offline, or never heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Presence {
    /// Heard from within `missed × interval`.
    Online,
    /// Silent for longer than `missed × interval`.
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

/// The interval a device is expected to be heard from in: its heartbeat
/// period (from its configuration), or the upload interval it reported in
/// its last batch when that is longer (its heartbeats arrive together, once
/// a window).
pub fn expected_interval_seconds(
    heartbeat_period_seconds: u64,
    upload_interval_seconds: Option<u32>,
) -> u64 {
    heartbeat_period_seconds.max(upload_interval_seconds.map_or(0, u64::from))
}

/// Presence at `now_ms` of a device last seen at `last_seen_ms`, expected to
/// be heard from every `interval_seconds` ([`expected_interval_seconds`]):
/// offline once more than `missed_heartbeats` intervals passed without news.
pub fn presence(
    last_seen_ms: Option<u64>,
    interval_seconds: u64,
    missed_heartbeats: u32,
    now_ms: u64,
) -> Presence {
    let Some(seen) = last_seen_ms else {
        return Presence::Unknown;
    };
    let allowed_ms = interval_seconds
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

    #[test]
    fn the_expected_interval_is_the_longer_of_period_and_upload_interval() {
        assert_eq!(expected_interval_seconds(60, None), 60);
        assert_eq!(expected_interval_seconds(60, Some(3600)), 3600);
        assert_eq!(expected_interval_seconds(60, Some(30)), 60);
        assert_eq!(expected_interval_seconds(60, Some(0)), 60);
        assert_eq!(
            expected_interval_seconds(0, Some(u32::MAX)),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn an_hourly_uploader_is_online_until_three_windows_are_missed() {
        let seen = 1_000_000;
        let hourly = expected_interval_seconds(60, Some(3600));
        let at = |ms| presence(Some(seen), hourly, 3, seen + ms);
        assert_eq!(at(3 * 60_000 + 1), Presence::Online);
        assert_eq!(at(2 * 3_600_000), Presence::Online);
        assert_eq!(at(3 * 3_600_000), Presence::Online);
        assert_eq!(at(3 * 3_600_000 + 1), Presence::Offline);
        // A device on a fast link is judged by its heartbeat period still.
        let fast = expected_interval_seconds(60, Some(10));
        assert_eq!(
            presence(Some(seen), fast, 3, seen + 180_001),
            Presence::Offline
        );
    }
}
