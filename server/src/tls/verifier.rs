//! Client certificate verification that lets *expired* certificates through
//! the handshake, so the HTTP layer can allow exactly one thing with them:
//! renewing the certificate (registration with the device's own identity).
//!
//! Everything else is rustls' WebPKI verifier: unknown CA, broken chain, bad
//! signature, wrong key usage, not-yet-valid all fail the handshake. For an
//! expired leaf the chain is verified again *at the leaf's `notAfter`*: it
//! passes only if it was a valid chain while the leaf was still valid.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use crate::pki::cert_not_after;

/// Wraps a WebPKI client verifier; see the module documentation.
#[derive(Debug)]
pub struct ExpiryTolerantVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ExpiryTolerantVerifier {
    /// Wrap `inner` (normally rustls' `WebPkiClientVerifier`).
    pub fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        Self { inner }
    }
}

impl ClientCertVerifier for ExpiryTolerantVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => {
                let not_after = cert_not_after(end_entity)
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                let leaf_secs = not_after
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if leaf_secs >= now.as_secs() {
                    // The leaf is still valid: something else in the chain
                    // expired. That is not ours to excuse.
                    return Err(Error::InvalidCertificate(CertificateError::Expired));
                }
                let at = UnixTime::since_unix_epoch(Duration::from_secs(leaf_secs));
                self.inner.verify_client_cert(end_entity, intermediates, at)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
