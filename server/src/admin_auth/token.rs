//! Bearer tokens of the admin listener: made from 32 random bytes, shown
//! once, stored as their SHA-256. A token has 256 bits of entropy, so a
//! plain hash is enough (no password stretching): whoever reads the
//! configuration cannot present the token, and a presented token is
//! checked against every configured hash in constant time.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use super::AdminRole;
use crate::config::AdminToken;

/// What every token starts with (recognisable in a leaked log or a
/// secret scanner).
pub const TOKEN_PREFIX: &str = "flotta_";

/// Longest `Authorization` token looked at; longer ones are refused unread.
pub const MAX_TOKEN_BYTES: usize = 256;

/// A fresh token.
pub fn generate() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// SHA-256 of `token`, lowercase hex: what the configuration stores.
pub fn hash_hex(token: &str) -> String {
    flotta_proto::frame_keys::hex(&sha256(token))
}

fn sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    flotta_proto::frame_keys::unhex(text).ok()?.try_into().ok()
}

/// The configured tokens, by hash.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    entries: Vec<([u8; 32], String, AdminRole)>,
}

impl TokenTable {
    /// From the configuration (entries whose hash does not parse are
    /// left out; configuration validation refuses them first).
    pub fn new(tokens: &[AdminToken]) -> Self {
        Self {
            entries: tokens
                .iter()
                .filter_map(|t| Some((unhex(&t.sha256)?, t.name.clone(), t.role)))
                .collect(),
        }
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The holder and role of `token`, if it is one of ours. Every entry is
    /// compared, in constant time, whatever matches.
    pub fn find(&self, token: &str) -> Option<(&str, AdminRole)> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let presented = sha256(token);
        let mut found = None;
        for (hash, name, role) in &self.entries {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some((name.as_str(), *role));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_distinct_and_found_by_their_hash_only() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43);
        let table = TokenTable::new(&[
            AdminToken {
                name: "alice".into(),
                role: AdminRole::Admin,
                sha256: hash_hex(&a),
            },
            AdminToken {
                name: "viewer".into(),
                role: AdminRole::ReadOnly,
                sha256: hash_hex(&b),
            },
        ]);
        assert_eq!(table.find(&a), Some(("alice", AdminRole::Admin)));
        assert_eq!(table.find(&b), Some(("viewer", AdminRole::ReadOnly)));
        // The hash itself is not a token, nor is a token with a byte changed.
        assert_eq!(table.find(&hash_hex(&a)), None);
        let mut changed = a.clone().into_bytes();
        changed[10] ^= 1;
        assert_eq!(table.find(std::str::from_utf8(&changed).unwrap()), None);
        assert_eq!(table.find(&"x".repeat(MAX_TOKEN_BYTES + 1)), None);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
