//! The sealed-frame keys of the configuration: the UDP listener (off unless
//! `udp_listen_addr` is set), reassembly bounds and key rotation, their
//! validation, and the settings the frame service is built from (see
//! server/README.md, "Sealed frames over UDP").

use std::time::Duration;

use super::{Config, ConfigError, DAY_SECONDS};
use crate::frames::FrameSettings;
use crate::frames::reassembly::FragmentLimits;

/// The largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// The smallest answer budget: an ack, a pending configuration and a key
/// rotation must fit.
const MIN_ANSWER_BYTES: usize = 160;

impl Config {
    /// Check the frame keys.
    pub(super) fn validate_frames(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if !(64..=MAX_UDP_PAYLOAD).contains(&self.udp_max_datagram_bytes) {
            return invalid(
                "udp_max_datagram_bytes",
                format!("must be 64..={MAX_UDP_PAYLOAD}"),
            );
        }
        if !(MIN_ANSWER_BYTES..=MAX_UDP_PAYLOAD).contains(&self.udp_answer_bytes) {
            return invalid(
                "udp_answer_bytes",
                format!("must be {MIN_ANSWER_BYTES}..={MAX_UDP_PAYLOAD}"),
            );
        }
        for (key, v) in [
            ("udp_max_in_flight", self.udp_max_in_flight),
            (
                "udp_failures_per_source_per_minute",
                self.udp_failures_per_source_per_minute as usize,
            ),
            (
                "frame_context_cache_entries",
                self.frame_context_cache_entries,
            ),
        ] {
            if v == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        if self.frame_answer_cache_bytes < self.udp_answer_bytes {
            return invalid(
                "frame_answer_cache_bytes",
                "must be at least udp_answer_bytes".into(),
            );
        }
        if !(1..=3650).contains(&self.frame_rotation_days) {
            return invalid("frame_rotation_days", "must be 1..=3650".into());
        }
        if !(1..=1 << 20).contains(&self.frame_max_record_bytes) {
            return invalid("frame_max_record_bytes", "must be 1..=1048576".into());
        }
        if self.frame_max_pending_bytes_per_device < u64::from(self.frame_max_record_bytes) {
            return invalid(
                "frame_max_pending_bytes_per_device",
                "must be at least frame_max_record_bytes".into(),
            );
        }
        Ok(())
    }

    /// Whether sealed frames are on (the UDP or the webhook listener is
    /// configured): only then does the server hand out frame keys.
    pub fn frames_enabled(&self) -> bool {
        self.udp_listen_addr.is_some() || self.webhook_listen_addr.is_some()
    }

    /// How often a device's frame context gets a new epoch.
    pub fn frame_rotation(&self) -> Duration {
        Duration::from_secs(self.frame_rotation_days.saturating_mul(DAY_SECONDS))
    }

    /// What the frame service needs.
    pub fn frame_settings(&self) -> FrameSettings {
        FrameSettings {
            answer_bytes: self.udp_answer_bytes,
            limits: FragmentLimits {
                max_record_bytes: self.frame_max_record_bytes,
                max_pending_bytes: self.frame_max_pending_bytes_per_device,
            },
            rotation: self.frame_rotation(),
            cache_entries: self.frame_context_cache_entries,
            answer_cache_bytes: self.frame_answer_cache_bytes,
            default_heartbeat_period_seconds: self.default_heartbeat_period_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_keys_are_checked_and_udp_is_off_by_default() {
        let d = Config::default();
        assert!(!d.frames_enabled());
        assert!(!d.to_toml().contains("udp_listen_addr"));
        for (toml, key) in [
            ("udp_max_datagram_bytes = 10", "udp_max_datagram_bytes"),
            ("udp_answer_bytes = 100", "udp_answer_bytes"),
            ("udp_max_in_flight = 0", "udp_max_in_flight"),
            ("frame_rotation_days = 0", "frame_rotation_days"),
            ("frame_max_record_bytes = 0", "frame_max_record_bytes"),
            (
                "frame_max_record_bytes = 4096\nframe_max_pending_bytes_per_device = 100",
                "frame_max_pending_bytes_per_device",
            ),
            ("udp_listen_addr = \"nowhere\"", "udp_listen_addr"),
            (
                "frame_answer_cache_bytes = 1000",
                "frame_answer_cache_bytes",
            ),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let c = Config::from_toml_str("udp_listen_addr = \"127.0.0.1:5683\"").unwrap();
        assert!(c.frames_enabled());
        assert_eq!(Config::from_toml_str(&c.to_toml()).unwrap(), c);
        assert_eq!(c.frame_rotation(), Duration::from_secs(30 * 86_400));
    }
}
