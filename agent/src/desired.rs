//! The desired configuration from the server, cached on disk so that a
//! reboot without network still applies the last known configuration.

use std::path::{Path, PathBuf};

use flotta_proto::batch::ConfigUpdate;
use serde_json::Value;

/// Cache file under the data directory.
pub const DESIRED_FILE: &str = "desired.json";

/// The last configuration received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Server's version string (empty: never received one).
    pub version: String,
    /// Flotta `device-configuration-message` JSON.
    pub message_json: String,
}

/// Cache errors.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    /// I/O on the cache file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server sent something that is not JSON.
    #[error("configuration {version} is not valid JSON: {message}")]
    Invalid {
        /// Its version.
        version: String,
        /// Parser message.
        message: String,
    },
}

impl Desired {
    /// Load the cache; a missing or unreadable cache is an empty configuration
    /// (the server sends the current one on the next contact).
    pub fn load(data_dir: &Path) -> Desired {
        let Ok(text) = std::fs::read_to_string(data_dir.join(DESIRED_FILE)) else {
            return Desired::default();
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return Desired::default();
        };
        Desired {
            version: v
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            message_json: v.get("message").map(Value::to_string).unwrap_or_default(),
        }
    }

    /// Validate and store an update atomically, readable by the agent's
    /// user only (workload specifications may carry credentials in their
    /// environment).
    pub fn store(data_dir: &Path, update: &ConfigUpdate) -> Result<Desired, DesiredError> {
        let message: Value =
            serde_json::from_str(&update.message_json).map_err(|e| DesiredError::Invalid {
                version: update.version.clone(),
                message: e.to_string(),
            })?;
        let doc = serde_json::json!({"version": update.version, "message": message});
        let path = data_dir.join(DESIRED_FILE);
        crate::fsutil::write_atomic(&path, doc.to_string().as_bytes(), 0o600)
            .map_err(|source| DesiredError::Io { path, source })?;
        Ok(Desired {
            version: update.version.clone(),
            message_json: message.to_string(),
        })
    }

    /// `configuration.heartbeat.period_seconds`, if set.
    pub fn heartbeat_period_seconds(&self) -> Option<u64> {
        let v: Value = serde_json::from_str(&self.message_json).ok()?;
        v.pointer("/configuration/heartbeat/period_seconds")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_reads_the_heartbeat_period() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Desired::load(dir.path()), Desired::default());
        let update = ConfigUpdate {
            version: "7".into(),
            message_json:
                r#"{"device_id":"d","configuration":{"heartbeat":{"period_seconds":15}}}"#.into(),
        };
        let stored = Desired::store(dir.path(), &update).unwrap();
        let loaded = Desired::load(dir.path());
        assert_eq!(loaded, stored);
        assert_eq!(loaded.version, "7");
        assert_eq!(loaded.heartbeat_period_seconds(), Some(15));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(DESIRED_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn invalid_update_is_refused_and_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let good = ConfigUpdate {
            version: "1".into(),
            message_json: "{}".into(),
        };
        Desired::store(dir.path(), &good).unwrap();
        let bad = ConfigUpdate {
            version: "2".into(),
            message_json: "{nope".into(),
        };
        assert!(Desired::store(dir.path(), &bad).is_err());
        assert_eq!(Desired::load(dir.path()).version, "1");
    }
}
