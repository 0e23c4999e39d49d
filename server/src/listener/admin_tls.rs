//! Admission on the admin listener when it speaks TLS (off loopback, or
//! `admin_tls`): the handshake, and the client certificate if one was
//! sent (an operator's from `issue-admin-cert`; token holders send none).
//! Every connection is of the admin class; who may do what is decided per
//! request by `admin_auth::guard`. Its handshakes are not counted in
//! `flotta_tls_handshakes_total`, which counts devices' connections.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::accept::{Admit, Admitted};
use super::class::Class;
use crate::admin_auth::guard::AdminPeer;
use crate::pki::ClientIdentity;

/// Admits admin connections over TLS.
pub struct AdminTlsAdmit {
    /// The admin TLS configuration (client certificates optional).
    pub acceptor: TlsAcceptor,
}

impl std::fmt::Debug for AdminTlsAdmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTlsAdmit").finish_non_exhaustive()
    }
}

impl super::connection::RequestExtension for AdminPeer {
    fn insert_into(&self, extensions: &mut axum::http::Extensions) {
        extensions.insert(self.clone());
    }
}

impl Admit for AdminTlsAdmit {
    type Io = TlsStream<TcpStream>;
    type Extension = AdminPeer;

    async fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<Admitted<Self::Io, AdminPeer>> {
        let tls = match self.acceptor.accept(tcp).await {
            Ok(tls) => tls,
            Err(e) => {
                tracing::info!(%peer, "admin TLS handshake failed: {e}");
                return None;
            }
        };
        let identity = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            Some(der) => match ClientIdentity::from_der(der) {
                Ok(identity) => Some(identity),
                Err(e) => {
                    tracing::warn!(%peer, "unreadable admin client certificate: {e}");
                    return None;
                }
            },
            None => None,
        };
        Some(Admitted {
            io: tls,
            class: Class::Admin,
            client: None,
            extension: AdminPeer(identity),
        })
    }

    fn timed_out(&self, peer: SocketAddr) {
        tracing::info!(%peer, "admin TLS handshake timed out");
    }
}
