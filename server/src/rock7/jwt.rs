//! Verifying the JWT Rock7 puts in every MO webhook: `{"alg":"RS256"}`,
//! signed with Ground Control's RSA key, claims mirroring the message's
//! fields as strings plus `iss: "Rock 7"` and `iat`.
//!
//! A thin use of `ring` (RSASSA-PKCS1-v1_5 with SHA-256, 2048..8192-bit
//! keys) and `base64` rather than a JWT crate: both are in the build
//! already, while `jsonwebtoken` 10 brings a second crypto stack
//! (aws-lc-rs or RustCrypto `rsa`) and 9 is its superseded line. Only
//! RS256 is accepted whatever the header says (no `none`, no HMAC
//! confusion); no other header field is honoured.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Map, Value};

/// The issuer Rock7 signs as.
pub const ISSUER: &str = "Rock 7";

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url segments of JSON objects.
    #[error("malformed JWT: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm.
    #[error("JWT algorithm must be RS256")]
    Algorithm,
    /// The signature does not verify under the configured key.
    #[error("JWT signature does not verify")]
    Signature,
    /// `iss` is not Rock 7.
    #[error("JWT issuer is not \"Rock 7\"")]
    Issuer,
}

impl JwtError {
    /// Never: the same token is refused again.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Rock7 public key: {0}")]
pub struct KeyError(pub String);

/// Rock7's public key, ready to verify.
#[derive(Debug, Clone)]
pub struct Rock7Key {
    /// The ASN.1 `RSAPublicKey` (PKCS#1) ring verifies with.
    rsa_public_key: Vec<u8>,
}

impl Rock7Key {
    /// From PEM: `PUBLIC KEY` (SubjectPublicKeyInfo, as Rock7 publishes it)
    /// or `RSA PUBLIC KEY` (PKCS#1).
    ///
    /// # Errors
    /// [`KeyError`]: not PEM, not an RSA public key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(pem).map_err(|e| KeyError(format!("not PEM: {e}")))?;
        let rsa_public_key = match pem.label.as_str() {
            "RSA PUBLIC KEY" => pem.contents,
            "PUBLIC KEY" => {
                use x509_parser::prelude::FromDer;
                let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&pem.contents)
                    .map_err(|e| KeyError(format!("not a SubjectPublicKeyInfo: {e}")))?;
                if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
                    return Err(KeyError("not an RSA key".into()));
                }
                spki.subject_public_key.data.to_vec()
            }
            other => return Err(KeyError(format!("PEM label \"{other}\" is no public key"))),
        };
        Ok(Self { rsa_public_key })
    }

    /// Verify `token` and return its claims (`iss` checked).
    ///
    /// # Errors
    /// [`JwtError`].
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three segments"));
        };
        let header = object(h)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(JwtError::Algorithm);
        }
        let signature = b64(sig)?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.rsa_public_key)
            .verify(
                &token.trim().as_bytes()[..h.len() + 1 + c.len()],
                &signature,
            )
            .map_err(|_| JwtError::Signature)?;
        let claims = object(c)?;
        if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
            return Err(JwtError::Issuer);
        }
        Ok(claims)
    }
}

fn b64(segment: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed("a segment is not base64url"))
}

fn object(segment: &str) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice(&b64(segment)?) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed("a segment is not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/rock7-test-only.pub.pem");
    const PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/rock7-test-only.key.pem");

    fn sign(header: &Value, claims: &Value) -> String {
        super::super::testing::sign_jwt(PRIVATE, header, claims).unwrap()
    }

    fn token() -> String {
        sign(
            &json!({"alg": "RS256"}),
            &json!({"iss": "Rock 7", "imei": "300234010753370"}),
        )
    }

    #[test]
    fn rock7_tokens_verify_and_others_do_not() {
        let key = Rock7Key::from_pem(PUBLIC).unwrap();
        let claims = key.verify(&token()).unwrap();
        assert_eq!(claims["imei"], "300234010753370");
        assert_eq!(
            key.verify(&sign(&json!({"alg": "RS256"}), &json!({"iss": "Rock 8"}))),
            Err(JwtError::Issuer)
        );
        assert_eq!(
            key.verify(&sign(&json!({"alg": "none"}), &json!({"iss": "Rock 7"}))),
            Err(JwtError::Algorithm)
        );
        assert!(matches!(key.verify("a.b"), Err(JwtError::Malformed(_))));
        assert!(Rock7Key::from_pem(b"nonsense").is_err());
        assert!(
            Rock7Key::from_pem(PRIVATE).is_err(),
            "a private key is no public key"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_changed_byte_is_refused(at in any::<prop::sample::Index>(), to in any::<u8>()) {
            let key = Rock7Key::from_pem(PUBLIC).unwrap();
            let good = token();
            let mut bytes = good.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != to);
            bytes[i] = to;
            let changed = String::from_utf8_lossy(&bytes).into_owned();
            prop_assume!(changed.trim() != good);
            prop_assert!(key.verify(&changed).is_err());
        }
    }
}
