//! The LoRaWAN keys of the configuration: the ChirpStack v4 and The Things
//! Stack v3 integrations (off by default; served on `webhook_listen_addr`),
//! their shared-secret headers, the network servers' APIs for downlinks,
//! FPort, region and answer budget; their validation, and the settings
//! built from them (see server/README.md, "LoRaWAN").

use std::path::Path;
use std::time::Duration;

use super::{Config, ConfigError};
use crate::lorawan::downlink::{ChirpstackApi, DownlinkSettings, TtsApi};
use crate::lorawan::{Region, SecretHeader};

/// The smallest answer budget: EU868 DR0–2 and US915 DR8 carry 51 bytes at
/// least; below 24 even an ack hardly fits a sealed answer.
const MIN_ANSWER_BYTES: usize = 24;
/// The largest LoRaWAN FRMPayload.
const MAX_ANSWER_BYTES: usize = 242;

fn read_line(key: &'static str, file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| ConfigError::Invalid {
            key,
            reason: format!("{}: {e}", file.display()),
        })
}

fn http_url(key: &'static str, url: &str) -> Result<String, ConfigError> {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be an http(s) URL".into(),
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Config {
    /// Whether a LoRaWAN integration is on.
    pub fn lorawan_enabled(&self) -> bool {
        self.chirpstack_enabled || self.tts_enabled
    }

    /// The configured region.
    ///
    /// # Errors
    /// Unknown region.
    pub fn region(&self) -> Result<Region, ConfigError> {
        self.lorawan_region
            .parse()
            .map_err(|reason| ConfigError::Invalid {
                key: "lorawan_region",
                reason,
            })
    }

    /// Check the LoRaWAN keys.
    pub(super) fn validate_lorawan(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        self.region()?;
        if !(1..=223).contains(&self.lorawan_fport) {
            return invalid("lorawan_fport", "must be 1..=223".into());
        }
        if !(MIN_ANSWER_BYTES..=MAX_ANSWER_BYTES).contains(&self.lorawan_answer_bytes) {
            return invalid(
                "lorawan_answer_bytes",
                format!("must be {MIN_ANSWER_BYTES}..={MAX_ANSWER_BYTES}"),
            );
        }
        if !(1..=120).contains(&self.lorawan_downlink_timeout_seconds) {
            return invalid("lorawan_downlink_timeout_seconds", "must be 1..=120".into());
        }
        for (key, v) in [
            (
                "lorawan_downlink_max_attempts",
                self.lorawan_downlink_max_attempts as usize,
            ),
            (
                "lorawan_downlink_retry_initial_ms",
                self.lorawan_downlink_retry_initial_ms as usize,
            ),
            (
                "lorawan_downlink_queue_devices",
                self.lorawan_downlink_queue_devices,
            ),
        ] {
            if v == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        if self.lorawan_downlink_retry_max_ms < self.lorawan_downlink_retry_initial_ms {
            return invalid(
                "lorawan_downlink_retry_max_ms",
                "must be at least lorawan_downlink_retry_initial_ms".into(),
            );
        }
        http_url("chirpstack_api_url", &self.chirpstack_api_url)?;
        http_url("tts_api_url", &self.tts_api_url)?;
        if self.lorawan_enabled() && self.webhook_listen_addr.is_none() {
            return invalid(
                "webhook_listen_addr",
                "is required with chirpstack_enabled or tts_enabled".into(),
            );
        }
        if self.chirpstack_enabled {
            self.secret_source(
                "chirpstack_auth_secret",
                &self.chirpstack_auth_secret,
                &self.chirpstack_auth_secret_file,
            )?;
            if self.chirpstack_api_token_file.is_none() {
                return invalid(
                    "chirpstack_api_token_file",
                    "is required with chirpstack_enabled".into(),
                );
            }
        }
        if self.tts_enabled {
            self.secret_source(
                "tts_auth_secret",
                &self.tts_auth_secret,
                &self.tts_auth_secret_file,
            )?;
            for (key, id) in [
                ("tts_application_id", &self.tts_application_id),
                ("tts_webhook_id", &self.tts_webhook_id),
            ] {
                if !crate::lorawan::tts::valid_id(id) {
                    return invalid(
                        key,
                        "must be a TTS id (a-z, 0-9, single dashes, 3..=36 characters)".into(),
                    );
                }
            }
            if self.tts_api_key_file.is_none() {
                return invalid("tts_api_key_file", "is required with tts_enabled".into());
            }
        }
        Ok(())
    }

    fn secret_source(
        &self,
        key: &'static str,
        value: &Option<String>,
        file: &Option<std::path::PathBuf>,
    ) -> Result<(), ConfigError> {
        match (value, file) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(ConfigError::Invalid {
                key,
                reason: format!("set exactly one of {key} and {key}_file"),
            }),
        }
    }

    fn secret_header(
        key: &'static str,
        header: &str,
        value: &Option<String>,
        file: &Option<std::path::PathBuf>,
    ) -> Result<SecretHeader, ConfigError> {
        let secret = match (value, file) {
            (Some(v), _) => v.clone(),
            (None, Some(f)) => read_line(key, f)?,
            (None, None) => String::new(),
        };
        SecretHeader::new(header, &secret).map_err(|e| ConfigError::Invalid {
            key,
            reason: e.to_string(),
        })
    }

    /// ChirpStack's secret header (the secret read from its file).
    ///
    /// # Errors
    /// The file cannot be read, or the header or secret is invalid.
    pub fn chirpstack_auth(&self) -> Result<SecretHeader, ConfigError> {
        Self::secret_header(
            "chirpstack_auth_secret",
            &self.chirpstack_auth_header,
            &self.chirpstack_auth_secret,
            &self.chirpstack_auth_secret_file,
        )
    }

    /// TTS's secret header (the secret read from its file).
    ///
    /// # Errors
    /// The file cannot be read, or the header or secret is invalid.
    pub fn tts_auth(&self) -> Result<SecretHeader, ConfigError> {
        Self::secret_header(
            "tts_auth_secret",
            &self.tts_auth_header,
            &self.tts_auth_secret,
            &self.tts_auth_secret_file,
        )
    }

    /// Downlink settings, with the API token and key read from their files.
    ///
    /// # Errors
    /// A file cannot be read.
    pub fn downlink_settings(&self) -> Result<DownlinkSettings, ConfigError> {
        let chirpstack = match (&self.chirpstack_enabled, &self.chirpstack_api_token_file) {
            (true, Some(f)) => Some(ChirpstackApi {
                url: http_url("chirpstack_api_url", &self.chirpstack_api_url)?,
                token: read_line("chirpstack_api_token_file", f)?,
                protocol: self.chirpstack_api_protocol,
            }),
            _ => None,
        };
        let tts = match (&self.tts_enabled, &self.tts_api_key_file) {
            (true, Some(f)) => Some(TtsApi {
                url: http_url("tts_api_url", &self.tts_api_url)?,
                application_id: self.tts_application_id.clone(),
                webhook_id: self.tts_webhook_id.clone(),
                api_key: read_line("tts_api_key_file", f)?,
            }),
            _ => None,
        };
        Ok(DownlinkSettings {
            chirpstack,
            tts,
            f_port: self.lorawan_fport,
            timeout: Duration::from_secs(self.lorawan_downlink_timeout_seconds),
            backoff_initial: Duration::from_millis(self.lorawan_downlink_retry_initial_ms),
            backoff_max: Duration::from_millis(self.lorawan_downlink_retry_max_ms),
            max_attempts: self.lorawan_downlink_max_attempts,
            queue_devices: self.lorawan_downlink_queue_devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lorawan::downlink::ChirpstackProtocol;

    #[test]
    fn lorawan_keys_are_checked_and_off_by_default() {
        let d = Config::default();
        assert!(!d.lorawan_enabled());
        assert_eq!(d.lorawan_answer_bytes, 51);
        assert_eq!(d.region().unwrap(), Region::Eu868);
        let cs = "webhook_listen_addr = \"127.0.0.1:0\"\nchirpstack_enabled = true\n";
        for (toml, key) in [
            ("lorawan_region = \"XX\"", "lorawan_region"),
            ("lorawan_fport = 0", "lorawan_fport"),
            ("lorawan_answer_bytes = 243", "lorawan_answer_bytes"),
            ("chirpstack_enabled = true", "webhook_listen_addr"),
            (cs, "chirpstack_auth_secret"),
            (
                &format!(
                    "{cs}chirpstack_auth_secret = \"s\"\nchirpstack_auth_secret_file = \"/f\""
                ),
                "chirpstack_auth_secret",
            ),
            (
                &format!("{cs}chirpstack_auth_secret = \"0123456789abcdef\""),
                "chirpstack_api_token_file",
            ),
            ("chirpstack_api_url = \"ftp://x\"", "chirpstack_api_url"),
            (
                "chirpstack_api_protocol = \"mqtt\"",
                "chirpstack_api_protocol",
            ),
            (
                "webhook_listen_addr = \"127.0.0.1:0\"\ntts_enabled = true\ntts_auth_secret = \"x\"",
                "tts_application_id",
            ),
            (
                "lorawan_downlink_retry_max_ms = 1",
                "lorawan_downlink_retry_max_ms",
            ),
            ("lorawan_fportt = 1", "lorawan_fportt"),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let c = Config::from_toml_str(&format!(
            "{cs}chirpstack_auth_secret = \"Bearer 0123456789abcdef\"\n\
             chirpstack_api_token_file = \"/t\"\nchirpstack_api_url = \"http://cs:8090/\""
        ))
        .unwrap();
        assert!(!c.rock7_enabled(), "Rock7 is optional next to LoRaWAN");
        assert_eq!(Config::from_toml_str(&c.to_toml()).unwrap(), c);
        assert_eq!(
            c.chirpstack_auth().unwrap().name().as_str(),
            "authorization"
        );
        assert!(c.downlink_settings().is_err(), "no token file");
        assert_eq!(c.chirpstack_api_protocol, ChirpstackProtocol::Grpc);
        let rest = Config::from_toml_str("chirpstack_api_protocol = \"rest\"").unwrap();
        assert_eq!(rest.chirpstack_api_protocol, ChirpstackProtocol::Rest);
        assert_eq!(Config::from_toml_str(&rest.to_toml()).unwrap(), rest);
    }
}
