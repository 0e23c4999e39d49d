//! Admission on the mTLS API listener: the TLS handshake, the client's
//! identity from its certificate, and its class at the server's clock.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::accept::{Admit, Admitted};
use super::class::classify;
use crate::clock::Clock;
use crate::link_stats::ConnectionFacts;
use crate::metrics::Metrics;
use crate::pki::ClientIdentity;

/// Admits API connections; requests carry the [`ClientIdentity`] and the
/// connection's [`ConnectionFacts`] (handshake kind, window counted).
pub struct MtlsAdmit {
    /// The TLS configuration (client certificates mandatory).
    pub acceptor: TlsAcceptor,
    /// Judges certificate expiry for the class.
    pub clock: Arc<dyn Clock>,
    /// Counts handshakes.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MtlsAdmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsAdmit").finish_non_exhaustive()
    }
}

impl Admit for MtlsAdmit {
    type Io = TlsStream<TcpStream>;
    type Extension = (ClientIdentity, Arc<ConnectionFacts>);

    async fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<Admitted<Self::Io, Self::Extension>> {
        let tls = match self.acceptor.accept(tcp).await {
            Ok(tls) => tls,
            Err(e) => {
                self.metrics.count_handshake("failed");
                tracing::info!(%peer, "TLS handshake failed: {e}");
                return None;
            }
        };
        let session = tls.get_ref().1;
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.metrics
            .count_handshake(if resumed { "resumed" } else { "full" });
        let identity = match session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| ClientIdentity::from_der(c))
        {
            Some(Ok(identity)) => identity,
            Some(Err(e)) => {
                tracing::warn!(%peer, "unreadable client certificate: {e}");
                return None;
            }
            None => {
                tracing::warn!(%peer, "no client certificate");
                return None;
            }
        };
        let (class, client) = classify(&identity, self.clock.now());
        tracing::debug!(%peer, role = ?identity.role, %class, "client connected");
        Some(Admitted {
            io: tls,
            class,
            client,
            extension: (identity, Arc::new(ConnectionFacts::new(resumed))),
        })
    }

    fn timed_out(&self, peer: SocketAddr) {
        self.metrics.count_handshake("failed");
        tracing::info!(%peer, "TLS handshake timed out");
    }
}
