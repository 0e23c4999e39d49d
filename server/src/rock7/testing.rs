//! Test support: JWTs signed as Rock7 signs its webhooks (RS256, a PKCS#8
//! RSA key in PEM), for tests and simulators that post MO webhooks. Only
//! ever used with test keys (`server/tests/fixtures/`); the server itself
//! never signs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

/// `header.claims.signature`, base64url without padding, signed with the
/// PKCS#8 PEM `key_pem` whatever `header` says.
///
/// # Errors
/// The key is not a PKCS#8 RSA key, or signing failed.
pub fn sign_jwt(key_pem: &[u8], header: &Value, claims: &Value) -> Result<String, String> {
    let der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_der()).map_err(|e| e.to_string())?;
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .map_err(|e| e.to_string())?;
    Ok(format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig)))
}
