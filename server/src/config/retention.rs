//! `record_retention_days`: how long records and events of Flotta JSON
//! heartbeats are kept (`crate::retention`). 0 keeps them forever; at most
//! ten years.

use super::{Config, ConfigError};
use crate::retention::RetentionSettings;

/// The longest retention accepted, in days.
pub(super) const MAX_RETENTION_DAYS: u32 = 3650;

impl Config {
    /// The retention task's settings.
    pub fn retention_settings(&self) -> RetentionSettings {
        RetentionSettings::new(self.record_retention_days)
    }

    pub(super) fn validate_retention(&self) -> Result<(), ConfigError> {
        if self.record_retention_days > MAX_RETENTION_DAYS {
            return Err(ConfigError::Invalid {
                key: "record_retention_days",
                reason: format!("must be 0..={MAX_RETENTION_DAYS} (0: keep forever)"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn retention_defaults_to_30_days_and_is_bounded() {
        let d = Config::default();
        assert_eq!(d.record_retention_days, 30);
        assert_eq!(d.retention_settings().keep_days, 30);
        let c = Config::from_toml_str("record_retention_days = 0").unwrap();
        assert_eq!(c.retention_settings().keep_days, 0);
        let c = Config::from_toml_str("record_retention_days = 3650").unwrap();
        assert_eq!(c.record_retention_days, 3650);
        let err = Config::from_toml_str("record_retention_days = 3651").unwrap_err();
        assert!(err.to_string().contains("record_retention_days"), "{err}");
        let err = Config::from_toml_str("record_retention_days = -1").unwrap_err();
        assert!(err.to_string().contains("record_retention_days"), "{err}");
    }
}
