//! The Iridium SBD (Rock7) keys of the configuration: the webhook listener
//! (off unless `webhook_listen_addr` is set), Rock7's JWT key, MT delivery
//! and the SBD answer budget; their validation, and the settings built from
//! them (see server/README.md, "Iridium SBD via Rock7").

use std::time::Duration;

use super::{Config, ConfigError};
use crate::listener::{BodyRules, Limits, Timeouts};
use crate::rock7::mt::MtSettings;

/// Rock7's MT API.
pub const DEFAULT_MT_URL: &str = "https://rockblock.rock7.com/rockblock/MT";
/// The largest MT message a RockBLOCK receives.
pub const MAX_MT_BYTES: usize = 270;
/// The smallest answer budget (as over UDP): an ack, a pending
/// configuration and a key rotation must fit.
const MIN_ANSWER_BYTES: usize = 160;

impl Config {
    /// Check the SBD keys.
    pub(super) fn validate_rock7(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if !(MIN_ANSWER_BYTES..=MAX_MT_BYTES).contains(&self.sbd_answer_bytes) {
            return invalid(
                "sbd_answer_bytes",
                format!("must be {MIN_ANSWER_BYTES}..={MAX_MT_BYTES}"),
            );
        }
        if !(1024..=1 << 20).contains(&self.webhook_max_body_bytes) {
            return invalid("webhook_max_body_bytes", "must be 1024..=1048576".into());
        }
        if !(1..=60).contains(&self.webhook_request_timeout_seconds) {
            return invalid("webhook_request_timeout_seconds", "must be 1..=60".into());
        }
        if !(1..=120).contains(&self.rock7_mt_timeout_seconds) {
            return invalid("rock7_mt_timeout_seconds", "must be 1..=120".into());
        }
        for (key, v) in [
            ("webhook_max_connections", self.webhook_max_connections),
            ("rock7_mt_queue_imeis", self.rock7_mt_queue_imeis),
            ("rock7_mt_max_attempts", self.rock7_mt_max_attempts as usize),
            (
                "rock7_mt_retry_initial_ms",
                self.rock7_mt_retry_initial_ms as usize,
            ),
        ] {
            if v == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        if self.rock7_mt_retry_max_ms < self.rock7_mt_retry_initial_ms {
            return invalid(
                "rock7_mt_retry_max_ms",
                "must be at least rock7_mt_retry_initial_ms".into(),
            );
        }
        if !self.rock7_mt_url.starts_with("https://") && !self.rock7_mt_url.starts_with("http://") {
            return invalid("rock7_mt_url", "must be an http(s) URL".into());
        }
        // With a LoRaWAN integration on, Rock7 is optional (on when its key is set).
        let rock7_wanted = !self.lorawan_enabled() || self.rock7_public_key_file.is_some();
        if self.webhook_listen_addr.is_some() && rock7_wanted {
            if self.rock7_public_key_file.is_none() {
                return invalid(
                    "rock7_public_key_file",
                    "is required with webhook_listen_addr".into(),
                );
            }
            if self.rock7_username.trim().is_empty() || self.rock7_password_file.is_none() {
                return invalid(
                    "rock7_username",
                    "rock7_username and rock7_password_file are required with webhook_listen_addr"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// Whether the webhook listener serves `POST /rock7/mo`.
    pub fn rock7_enabled(&self) -> bool {
        self.webhook_listen_addr.is_some() && self.rock7_public_key_file.is_some()
    }

    /// Budgets of the webhook listener: one class, no per-client cap
    /// (Rock7 posts from a few addresses).
    pub fn webhook_limits(&self) -> Limits {
        Limits {
            total: self.webhook_max_connections,
            registration: 0,
            other: 0,
            per_client: self.webhook_max_connections,
        }
    }

    /// Deadlines of the webhook listener: the listeners' rules, with the
    /// whole request (headers included) due within
    /// `webhook_request_timeout_seconds` (Rock7 gives up after a few).
    pub fn webhook_timeouts(&self) -> Timeouts {
        let request = Duration::from_secs(self.webhook_request_timeout_seconds);
        let t = self.timeouts();
        Timeouts {
            header: t.header.min(request),
            request,
            body: BodyRules {
                min_rate_bytes_per_second: t.body.min_rate_bytes_per_second,
                grace: t.body.grace.min(request),
            },
            admission: t.admission,
        }
    }

    /// MT delivery settings, with the password read from its file.
    ///
    /// # Errors
    /// The password file cannot be read.
    pub fn mt_settings(&self) -> Result<MtSettings, ConfigError> {
        let password = match &self.rock7_password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| ConfigError::Invalid {
                    key: "rock7_password_file",
                    reason: format!("{}: {e}", f.display()),
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => String::new(),
        };
        Ok(MtSettings {
            url: self.rock7_mt_url.clone(),
            username: self.rock7_username.clone(),
            password,
            timeout: Duration::from_secs(self.rock7_mt_timeout_seconds),
            backoff_initial: Duration::from_millis(self.rock7_mt_retry_initial_ms),
            backoff_max: Duration::from_millis(self.rock7_mt_retry_max_ms),
            max_attempts: self.rock7_mt_max_attempts,
            queue_imeis: self.rock7_mt_queue_imeis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rock7_keys_are_checked_and_the_webhook_is_off_by_default() {
        let d = Config::default();
        assert!(d.webhook_listen_addr.is_none());
        assert_eq!(d.sbd_answer_bytes, 270);
        for (toml, key) in [
            ("sbd_answer_bytes = 271", "sbd_answer_bytes"),
            ("sbd_answer_bytes = 100", "sbd_answer_bytes"),
            ("webhook_max_body_bytes = 10", "webhook_max_body_bytes"),
            (
                "webhook_request_timeout_seconds = 0",
                "webhook_request_timeout_seconds",
            ),
            ("rock7_mt_url = \"ftp://x\"", "rock7_mt_url"),
            (
                "webhook_listen_addr = \"127.0.0.1:0\"",
                "rock7_public_key_file",
            ),
            (
                "webhook_listen_addr = \"127.0.0.1:0\"\nrock7_public_key_file = \"/k.pem\"",
                "rock7_username",
            ),
            ("rock7_mt_retry_max_ms = 1", "rock7_mt_retry_max_ms"),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let c = Config::from_toml_str(
            "webhook_listen_addr = \"127.0.0.1:0\"\nrock7_public_key_file = \"/k.pem\"\n\
             rock7_username = \"u\"\nrock7_password_file = \"/p\"",
        )
        .unwrap();
        assert!(c.frames_enabled());
        assert_eq!(Config::from_toml_str(&c.to_toml()).unwrap(), c);
        assert_eq!(c.webhook_timeouts().request, Duration::from_secs(10));
    }
}
