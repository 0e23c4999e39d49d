//! Which store backend the server uses: `store = "sqlite"` (the embedded
//! file under `data_dir`, the default) or `store = "postgres"` (one
//! PostgreSQL database shared by several replicas), with the keys of the
//! PostgreSQL backend. `postgres_url` may also come from the environment
//! (`FLOTTA_SERVER_POSTGRES_URL`), which keeps a password out of the file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::store::PostgresSettings;

/// `store`: where devices, records and objects are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// SQLite in `data_dir/flotta.db` (one server).
    #[default]
    Sqlite,
    /// PostgreSQL at `postgres_url` (one or more servers).
    Postgres,
}

impl Config {
    /// The PostgreSQL backend's pool settings.
    pub fn postgres_settings(&self) -> PostgresSettings {
        PostgresSettings {
            max_connections: self.postgres_max_connections,
            connect_timeout: Duration::from_secs(self.postgres_connect_timeout_seconds),
        }
    }

    /// Check the store keys.
    pub(super) fn validate_store(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if !(1..=1000).contains(&self.postgres_max_connections) {
            return invalid("postgres_max_connections", "must be 1..=1000");
        }
        if !(1..=300).contains(&self.postgres_connect_timeout_seconds) {
            return invalid("postgres_connect_timeout_seconds", "must be 1..=300");
        }
        match (self.store, self.postgres_url.as_deref()) {
            (StoreBackend::Postgres, None | Some("")) => invalid(
                "postgres_url",
                "is required with store = \"postgres\" (or FLOTTA_SERVER_POSTGRES_URL)",
            ),
            (StoreBackend::Postgres, Some(url)) => match url.parse::<postgres::Config>() {
                Ok(_) => Ok(()),
                Err(e) => Err(ConfigError::Invalid {
                    key: "postgres_url",
                    reason: format!("not a PostgreSQL connection string: {e}"),
                }),
            },
            (StoreBackend::Sqlite, Some(_)) => {
                invalid("postgres_url", "is only read with store = \"postgres\"")
            }
            (StoreBackend::Sqlite, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sqlite_by_default_and_postgres_by_key() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.store, StoreBackend::Sqlite);
        assert_eq!(c.postgres_settings(), PostgresSettings::default());
        let c = Config::from_toml_str(
            "store = \"postgres\"\npostgres_url = \"postgres://flotta@db/flotta\"\n\
             postgres_max_connections = 4\npostgres_connect_timeout_seconds = 3",
        )
        .unwrap();
        assert_eq!(c.store, StoreBackend::Postgres);
        assert_eq!(
            c.postgres_url.as_deref(),
            Some("postgres://flotta@db/flotta")
        );
        let s = c.postgres_settings();
        assert_eq!(s.max_connections, 4);
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        // Round trip through TOML (`flotta-server config`).
        assert_eq!(Config::from_toml_str(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn refuses_a_missing_bad_or_stray_url_and_bad_bounds() {
        let e = Config::from_toml_str("store = \"postgres\"").unwrap_err();
        assert!(e.to_string().contains("postgres_url"), "{e}");
        let e =
            Config::from_toml_str("store = \"postgres\"\npostgres_url = \"host=db port=notaport\"")
                .unwrap_err();
        assert!(e.to_string().contains("postgres_url"), "{e}");
        let e = Config::from_toml_str("postgres_url = \"postgres://db/f\"").unwrap_err();
        assert!(e.to_string().contains("only read"), "{e}");
        assert!(Config::from_toml_str("store = \"mysql\"").is_err());
        let e = Config::from_toml_str("postgres_max_connections = 0").unwrap_err();
        assert!(e.to_string().contains("1..=1000"), "{e}");
        let e = Config::from_toml_str("postgres_connect_timeout_seconds = 0").unwrap_err();
        assert!(e.to_string().contains("1..=300"), "{e}");
    }
}
