//! TLS for the Edge API: TLS 1.3 only, rustls with the ring provider,
//! mandatory client certificates from the current or an old CA, and session
//! resumption.
//!
//! Resumption is stateful: the server keeps each session (with the client's
//! certificate chain) in a bounded in-memory cache and sends one 32-byte
//! ticket naming it per connection. A stateless ticket would carry the
//! encrypted client certificate to the device and back on every connection
//! (~1 KiB), which costs more radio bytes than it saves; a cache entry costs
//! the server about 1 KiB of memory instead. A resumed session keeps the
//! identity of the certificate it was made with, and the HTTP layer judges
//! that certificate's expiry on every request, as for a full handshake.

mod verifier;

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

pub use verifier::ExpiryTolerantVerifier;

use crate::pki::Pki;

/// Building the TLS configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key does not parse.
    #[error("TLS certificate or key: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. no trust anchor).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The crypto provider used everywhere: ring.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server configuration for the API listener; `session_cache_entries`
/// sessions are kept for resumption (0 turns resumption off).
pub fn server_config(
    pki: &Pki,
    session_cache_entries: usize,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = base_config(pki, false)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if session_cache_entries == 0 {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    } else {
        config.session_storage =
            rustls::server::ServerSessionMemoryCache::new(session_cache_entries);
        // Each connection uses up one ticket and brings a fresh one: one is enough.
        config.send_tls13_tickets = 1;
    }
    Ok(Arc::new(config))
}

/// Server configuration for the admin listener when it speaks TLS: the
/// server certificate; a client certificate from our CAs is optional
/// (operators with a bearer token send none); no resumption.
pub fn admin_server_config(pki: &Pki) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = base_config(pki, true)?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS 1.3 with the server certificate, client certificates checked
/// against our CAs (expiry left to the HTTP layer), optional or mandatory.
fn base_config(pki: &Pki, optional_client: bool) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for ca in pki.client_roots() {
        roots.add(ca)?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let webpki = if optional_client {
        builder.allow_unauthenticated().build()?
    } else {
        builder.build()?
    };
    let verifier = Arc::new(ExpiryTolerantVerifier::new(webpki));
    let server = pki.server_cert();
    let chain = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())?;
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?)
}
