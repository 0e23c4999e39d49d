//! The listener keys of the configuration: deadlines, connection budgets
//! and body limits, their validation, and the settings the listeners are
//! built from (see server/README.md, "Connection budgets and deadlines").

use std::time::Duration;

use super::{Config, ConfigError};
use crate::listener::{BodyRules, Limits, Timeouts};

/// Longest deadline any timeout key may be set to.
const MAX_TIMEOUT_SECONDS: u64 = 3600;

impl Config {
    /// Check the listener keys.
    pub(super) fn validate_listeners(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        for (key, v) in [
            (
                "tls_handshake_timeout_seconds",
                self.tls_handshake_timeout_seconds,
            ),
            (
                "http_header_read_timeout_seconds",
                self.http_header_read_timeout_seconds,
            ),
            (
                "http_request_timeout_seconds",
                self.http_request_timeout_seconds,
            ),
            (
                "http_body_min_rate_grace_seconds",
                self.http_body_min_rate_grace_seconds,
            ),
        ] {
            if v == 0 || v > MAX_TIMEOUT_SECONDS {
                return invalid(key, format!("must be 1..={MAX_TIMEOUT_SECONDS}"));
            }
        }
        if self.http_request_timeout_seconds < self.http_header_read_timeout_seconds {
            return invalid(
                "http_request_timeout_seconds",
                "must not be shorter than http_header_read_timeout_seconds".into(),
            );
        }
        if self.http_body_min_rate_bytes_per_second == 0 {
            return invalid(
                "http_body_min_rate_bytes_per_second",
                "must be at least 1".into(),
            );
        }
        for (key, v) in [
            ("max_connections", self.max_connections),
            (
                "max_registration_connections",
                self.max_registration_connections,
            ),
            ("max_other_connections", self.max_other_connections),
            (
                "max_connections_per_client",
                self.max_connections_per_client,
            ),
            ("max_tls_handshakes", self.max_tls_handshakes),
            ("max_admin_connections", self.max_admin_connections),
            ("max_admin_streams", self.max_admin_streams),
            ("max_admin_body_bytes", self.max_admin_body_bytes),
        ] {
            if v == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        let shared = self
            .max_registration_connections
            .saturating_add(self.max_other_connections);
        if shared >= self.max_connections {
            return invalid(
                "max_connections",
                "must exceed max_registration_connections + max_other_connections \
                 (the rest is reserved for device certificates)"
                    .into(),
            );
        }
        if self.max_admin_body_bytes > 64 * 1024 * 1024 {
            return invalid("max_admin_body_bytes", "must be 1..=67108864".into());
        }
        Ok(())
    }

    /// Budgets of the API listener.
    pub fn api_limits(&self) -> Limits {
        Limits {
            total: self.max_connections,
            registration: self.max_registration_connections,
            other: self.max_other_connections,
            per_client: self.max_connections_per_client,
        }
    }

    /// Event and log streams open at once on the admin listener:
    /// `max_admin_streams`, but always fewer than `max_admin_connections`.
    pub fn admin_stream_limit(&self) -> usize {
        self.max_admin_streams
            .min(self.max_admin_connections.saturating_sub(1))
    }

    /// Budgets of the admin listener: one class, no per-client cap.
    pub fn admin_limits(&self) -> Limits {
        Limits {
            total: self.max_admin_connections,
            registration: 0,
            other: 0,
            per_client: self.max_admin_connections,
        }
    }

    /// Deadlines of both listeners.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: Duration::from_secs(self.http_header_read_timeout_seconds),
            request: Duration::from_secs(self.http_request_timeout_seconds),
            body: BodyRules {
                min_rate_bytes_per_second: self.http_body_min_rate_bytes_per_second,
                grace: Duration::from_secs(self.http_body_min_rate_grace_seconds),
            },
            admission: Duration::from_secs(self.tls_handshake_timeout_seconds),
        }
    }

    /// `self` with the keys of `toml` applied on top; validated. For tests
    /// and tools that start from a configuration rather than the defaults.
    pub fn with_toml(&self, toml: &str) -> Result<Config, ConfigError> {
        use figment::providers::{Format, Serialized, Toml};
        Self::extract(figment::Figment::from(Serialized::defaults(self)).merge(Toml::string(toml)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(toml: &str, key: &str) {
        let err = Config::from_toml_str(toml).unwrap_err();
        assert!(err.to_string().contains(key), "{toml}: {err}");
    }

    #[test]
    fn listener_keys_are_checked() {
        refused(
            "http_request_timeout_seconds = 0",
            "http_request_timeout_seconds",
        );
        refused(
            "http_header_read_timeout_seconds = 60\nhttp_request_timeout_seconds = 30",
            "http_request_timeout_seconds",
        );
        refused(
            "http_body_min_rate_bytes_per_second = 0",
            "http_body_min_rate_bytes_per_second",
        );
        refused(
            "http_body_min_rate_grace_seconds = 0",
            "http_body_min_rate_grace_seconds",
        );
        refused(
            "max_connections_per_client = 0",
            "max_connections_per_client",
        );
        refused("max_tls_handshakes = 0", "max_tls_handshakes");
        refused("max_admin_body_bytes = 0", "max_admin_body_bytes");
        refused("max_admin_streams = 0", "max_admin_streams");
        // Streams always leave a connection for other requests.
        let c = Config::from_toml_str("max_admin_connections = 4\nmax_admin_streams = 9").unwrap();
        assert_eq!(c.admin_stream_limit(), 3);
        assert_eq!(Config::default().admin_stream_limit(), 8);
        // Devices must keep a reserved share.
        refused(
            "max_connections = 10\nmax_registration_connections = 6\nmax_other_connections = 4",
            "max_connections",
        );
        let ok =
            "max_connections = 10\nmax_registration_connections = 6\nmax_other_connections = 3";
        let c = Config::from_toml_str(ok).unwrap();
        assert_eq!(
            c.api_limits().total - c.api_limits().registration - c.api_limits().other,
            1
        );
    }

    #[test]
    fn overrides_apply_on_top_of_a_configuration() {
        let base = Config {
            max_json_bytes: 7,
            ..Config::default()
        };
        let c = base.with_toml("http_request_timeout_seconds = 40").unwrap();
        assert_eq!((c.max_json_bytes, c.http_request_timeout_seconds), (7, 40));
        assert_eq!(c.timeouts().request, Duration::from_secs(40));
        assert!(base.with_toml("max_connections = 0").is_err());
        assert!(base.with_toml("nonsense = 1").is_err());
    }
}
