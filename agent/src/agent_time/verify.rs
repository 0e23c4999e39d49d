//! Server certificates checked at agent time, and what happens while that
//! time is not known to be right.
//!
//! [`AgentTimeProvider`] gives rustls agent time (`ClientConfig::
//! builder_with_details`), so validity is judged against a clock that is
//! never below the build or the persisted floor. That is not always
//! enough after a cold boot: the floor may be days behind, and the server
//! issues certificates with `notBefore` = its time − 1 h.
//!
//! [`FloorVerifier`] wraps rustls' `WebPkiServerVerifier`. Decision: while
//! the clock is *unconfirmed* (no server `Date` has agreed with or
//! corrected it in this process), a certificate whose only fault is
//! "not yet valid" is verified again *at its own `notBefore`*: the chain
//! to the pinned private CA, the signatures, the server name, and that it
//! (and the CA) are valid at that instant are all still checked. Why this
//! is safe enough: the CA is private and pinned, so `notBefore` guards
//! against little (only a certificate the CA itself post-dated); a clock
//! that is behind is the likely reason, and refusing would leave the
//! device unable to ever learn the time. An *expired* certificate is still
//! refused (checked at agent time, which only errs towards the past, so
//! "expired" is never a clock artefact), as is a foreign CA. Once the
//! clock is confirmed, "not yet valid" is refused like any other error.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::AgentClock;
use crate::clock::Clock;

/// Agent time for rustls.
#[derive(Debug, Clone)]
pub struct AgentTimeProvider(pub AgentClock);

impl TimeProvider for AgentTimeProvider {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_millis(
            self.0.now_ms(),
        )))
    }
}

/// WebPKI verification against the pinned roots, tolerant of "not yet
/// valid" while the clock is unconfirmed (see the module docs).
#[derive(Debug)]
pub struct FloorVerifier {
    inner: Arc<WebPkiServerVerifier>,
    clock: AgentClock,
}

impl FloorVerifier {
    /// A verifier trusting only `roots`.
    pub fn new(
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
        clock: AgentClock,
    ) -> Result<Self, rustls::client::VerifierBuilderError> {
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(FloorVerifier { inner, clock })
    }
}

/// The certificate's `notBefore`, if it parses.
fn not_before(cert: &CertificateDer<'_>) -> Option<UnixTime> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let secs = u64::try_from(parsed.validity().not_before.timestamp()).ok()?;
    Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

impl ServerCertVerifier for FloorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let first = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match first {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            )) if !self.clock.is_confirmed() => {
                let Some(at) = not_before(end_entity) else {
                    return first;
                };
                self.inner.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    at,
                )
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

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}
