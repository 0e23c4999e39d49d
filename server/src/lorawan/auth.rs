//! The shared secret a network server sends in a header of every webhook
//! request (ChirpStack's integration "headers", TTS's "additional
//! headers"): the header's whole value must equal the configured secret,
//! compared in constant time (the length may leak, not the contents).

use axum::http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

/// A header that must carry a secret.
#[derive(Clone)]
pub struct SecretHeader {
    name: HeaderName,
    secret: Vec<u8>,
}

impl std::fmt::Debug for SecretHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHeader")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a header cannot hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not a valid HTTP header name.
    #[error("\"{0}\" is not an HTTP header name")]
    Name(String),
    /// Empty, or not visible ASCII (a header value could not carry it).
    #[error("the secret must be 16 to 4096 visible ASCII characters")]
    Secret,
}

impl SecretError {
    /// Never: the configuration must change.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

impl SecretHeader {
    /// The header `name` (case-insensitive) carrying `secret` (trailing
    /// line ends removed, as read from a file).
    ///
    /// # Errors
    /// [`SecretError`].
    pub fn new(name: &str, secret: &str) -> Result<Self, SecretError> {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| SecretError::Name(name.to_owned()))?;
        let secret = secret.trim_end_matches(['\r', '\n']);
        if !(16..=4096).contains(&secret.len())
            || !secret.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(SecretError::Secret);
        }
        Ok(Self {
            name,
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// Whether `headers` carry the secret: exactly one such header whose
    /// value equals it.
    pub fn verify(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(&self.name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        bool::from(value.as_bytes().ct_eq(&self.secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_whole_value_must_match_once() {
        let s = SecretHeader::new("X-Flotta-Secret", "0123456789abcdef-secret\n").unwrap();
        let mut h = HeaderMap::new();
        assert!(!s.verify(&h), "missing");
        h.insert(
            "x-flotta-secret",
            HeaderValue::from_static("0123456789abcdef-secret"),
        );
        assert!(s.verify(&h));
        h.insert(
            "x-flotta-secret",
            HeaderValue::from_static("0123456789abcdef-secreT"),
        );
        assert!(!s.verify(&h), "wrong");
        h.insert(
            "x-flotta-secret",
            HeaderValue::from_static("0123456789abcdef-secret "),
        );
        assert!(!s.verify(&h), "longer");
        h.insert(
            "x-flotta-secret",
            HeaderValue::from_static("0123456789abcdef-secret"),
        );
        h.append(
            "x-flotta-secret",
            HeaderValue::from_static("0123456789abcdef-secret"),
        );
        assert!(!s.verify(&h), "twice");
        assert!(SecretHeader::new("bad header", "0123456789abcdef").is_err());
        assert!(SecretHeader::new("x", "short").is_err());
        assert!(!format!("{s:?}").contains("secret-"), "redacted");
    }
}
