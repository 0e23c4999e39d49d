//! Access to the admin listener: bearer tokens (stored as SHA-256 hashes),
//! operators' client certificates, TLS, and the rule that a listener off
//! loopback is never open.
//!
//! - On loopback with no credentials configured the admin listener is open
//!   (the local operator, as `kubectl` on a kind cluster);
//! - as soon as `admin_tokens` or `admin_client_certs` is configured, every
//!   request but `/healthz` and `/readyz` needs them, on loopback too;
//! - off loopback credentials are mandatory (the server refuses to start
//!   without) and the listener speaks TLS with the server certificate.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::admin_auth::AdminRole;

/// One bearer token of the admin listener. The token itself is never
/// stored: `flotta-server admin-token` prints it once with this entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds it (recorded in the audit log).
    pub name: String,
    /// What it may do.
    pub role: AdminRole,
    /// SHA-256 of the token, 64 lowercase hex digits.
    pub sha256: String,
}

/// Longest name of a token or an admin certificate.
pub const MAX_ADMIN_NAME_BYTES: usize = 64;

/// Whether `name` is acceptable for a token or an admin certificate:
/// 1..=64 of ASCII letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_admin_name(name: &str) -> bool {
    (1..=MAX_ADMIN_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `addr` is a loopback address (127.0.0.0/8, ::1).
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

impl Config {
    /// Whether the admin listener speaks TLS: when asked to, and always
    /// off loopback (bearer tokens never cross a network in the clear).
    pub fn admin_uses_tls(&self) -> bool {
        self.admin_tls || !is_loopback(self.admin_listen_addr)
    }

    /// Whether any admin credential is configured.
    pub fn admin_credentials_configured(&self) -> bool {
        !self.admin_tokens.is_empty() || self.admin_client_certs
    }

    /// Check the admin access keys, and refuse an admin listener off
    /// loopback that anyone could use.
    pub(super) fn validate_admin(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        let mut names = std::collections::HashSet::new();
        for t in &self.admin_tokens {
            if !valid_admin_name(&t.name) {
                return invalid(
                    "admin_tokens",
                    format!(
                        "name {:?}: 1..={MAX_ADMIN_NAME_BYTES} of letters, digits, '.', '_', '-', '@'",
                        t.name
                    ),
                );
            }
            if !names.insert(t.name.as_str()) {
                return invalid(
                    "admin_tokens",
                    format!(
                        "name {:?} is used twice (names are who the audit log records)",
                        t.name
                    ),
                );
            }
            if t.sha256.len() != 64 || !is_hex(&t.sha256) {
                return invalid(
                    "admin_tokens",
                    format!(
                        "{:?}: sha256 must be 64 lowercase hex digits (the hash `flotta-server admin-token` prints, not the token)",
                        t.name
                    ),
                );
            }
        }
        for s in &self.admin_revoked_serials {
            if s.is_empty() || s.len() > 64 || !is_hex(s) {
                return invalid(
                    "admin_revoked_serials",
                    format!("{s:?} is not a serial number in lowercase hex"),
                );
            }
        }
        if !is_loopback(self.admin_listen_addr) && !self.admin_credentials_configured() {
            return invalid(
                "admin_listen_addr",
                format!(
                    "{} is not a loopback address and no admin credentials are configured: \
                     anyone who reaches it could approve devices and change their workloads. \
                     Configure admin_tokens (flotta-server admin-token) and/or admin_client_certs = true \
                     (flotta-server issue-admin-cert), or listen on 127.0.0.1",
                    self.admin_listen_addr
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn off_loopback_without_credentials_is_refused_with_the_reason() {
        let e = Config::from_toml_str(r#"admin_listen_addr = "0.0.0.0:8044""#).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("admin_listen_addr"), "{text}");
        assert!(text.contains("not a loopback address"), "{text}");
        assert!(text.contains("admin-token"), "{text}");
        // Loopback stays open, over IPv6 too.
        let c = Config::from_toml_str(r#"admin_listen_addr = "[::1]:8044""#).unwrap();
        assert!(!c.admin_uses_tls());
        assert!(!c.admin_credentials_configured());
    }

    #[test]
    fn off_loopback_with_credentials_starts_and_uses_tls() {
        let toml = format!(
            r#"admin_listen_addr = "0.0.0.0:8044"
[[admin_tokens]]
name = "ops@example"
role = "read-only"
sha256 = "{HASH}"
"#
        );
        let c = Config::from_toml_str(&toml).unwrap();
        assert!(c.admin_uses_tls());
        assert_eq!(c.admin_tokens[0].role, AdminRole::ReadOnly);
        let c = Config::from_toml_str(
            "admin_listen_addr = \"10.1.2.3:8044\"\nadmin_client_certs = true",
        )
        .unwrap();
        assert!(c.admin_uses_tls() && c.admin_credentials_configured());
        // Round trip through the printed configuration.
        let again = Config::from_toml_str(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_tokens_and_serials_are_refused() {
        let token = |name: &str, role: &str, hash: &str| {
            format!("[[admin_tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{hash}\"\n")
        };
        for (toml, key) in [
            (token("", "admin", HASH), "admin_tokens"),
            (token("a b", "admin", HASH), "admin_tokens"),
            (token("a", "admin", &HASH[1..]), "admin_tokens"),
            (token("a", "admin", &HASH.to_uppercase()), "admin_tokens"),
            (
                token("a", "admin", HASH) + &token("a", "read-only", HASH),
                "admin_tokens",
            ),
            (
                "admin_revoked_serials = [\"xyz\"]".to_owned(),
                "admin_revoked_serials",
            ),
        ] {
            match Config::from_toml_str(&toml) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{toml}"),
                other => panic!("{toml}: {other:?}"),
            }
        }
        // An unknown role and an unknown field are parse errors.
        assert!(Config::from_toml_str(&token("a", "root", HASH)).is_err());
        assert!(
            Config::from_toml_str(&format!("{}extra = 1\n", token("a", "admin", HASH))).is_err()
        );
    }
}
