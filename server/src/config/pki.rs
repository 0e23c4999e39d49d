//! The PKI's keys: where the CA lives (`data_dir`, created there on first
//! start, or `ca_cert_file` + `ca_key_file`, read-only and shared by
//! replicas) and the lifetimes of what it issues.

use std::path::PathBuf;
use std::time::Duration;

use super::{Config, ConfigError};
use crate::pki::{CaFiles, PkiSettings};

impl Config {
    /// What the PKI needs.
    pub fn pki_settings(&self) -> PkiSettings {
        let ca_files = match (&self.ca_cert_file, &self.ca_key_file) {
            (Some(cert), Some(key)) => Some(CaFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        PkiSettings {
            server_names: self.server_names.clone(),
            ca_validity: Duration::from_secs(self.ca_validity_seconds),
            server_cert_validity: Duration::from_secs(self.server_cert_validity_seconds),
            old_ca_files: self.old_ca_files.clone(),
            ca_files,
        }
    }

    /// Where the CA certificate is: `ca_cert_file`, else `data_dir/ca.pem`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.pki_settings().ca_cert_path(&self.data_dir)
    }

    /// Check the CA keys: both or neither.
    pub(super) fn validate_pki(&self) -> Result<(), ConfigError> {
        let empty = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str().is_empty());
        for (key, value) in [
            ("ca_cert_file", &self.ca_cert_file),
            ("ca_key_file", &self.ca_key_file),
        ] {
            if empty(value) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must not be empty".into(),
                });
            }
        }
        match (&self.ca_cert_file, &self.ca_key_file) {
            (Some(_), None) => Err(ConfigError::Invalid {
                key: "ca_key_file",
                reason: "is required with ca_cert_file (both or neither)".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Invalid {
                key: "ca_cert_file",
                reason: "is required with ca_key_file (both or neither)".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_ca_is_in_data_dir_unless_both_files_are_given() {
        let c = Config::from_toml_str("data_dir = \"/d\"").unwrap();
        assert_eq!(c.pki_settings().ca_files, None);
        assert_eq!(c.ca_cert_path(), Path::new("/d/ca.pem"));
        let c = Config::from_toml_str(
            "data_dir = \"/d\"\nca_cert_file = \"/ca/ca.pem\"\nca_key_file = \"/ca/ca.key\"",
        )
        .unwrap();
        assert_eq!(
            c.pki_settings().ca_files,
            Some(CaFiles {
                cert: "/ca/ca.pem".into(),
                key: "/ca/ca.key".into()
            })
        );
        assert_eq!(c.ca_cert_path(), Path::new("/ca/ca.pem"));
        assert_eq!(Config::from_toml_str(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn both_or_neither() {
        let e = Config::from_toml_str("ca_cert_file = \"/ca/ca.pem\"").unwrap_err();
        assert!(e.to_string().contains("ca_key_file"), "{e}");
        assert!(e.to_string().contains("both or neither"), "{e}");
        let e = Config::from_toml_str("ca_key_file = \"/ca/ca.key\"").unwrap_err();
        assert!(e.to_string().contains("ca_cert_file"), "{e}");
        let e = Config::from_toml_str("ca_cert_file = \"\"\nca_key_file = \"/k\"").unwrap_err();
        assert!(
            e.to_string().contains("ca_cert_file: must not be empty"),
            "{e}"
        );
    }
}
