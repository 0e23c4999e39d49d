//! The accept loop shared by both listeners.
//!
//! A connection goes through two budgets:
//!
//! 1. **Pending** (`max_pending`): accepted but not yet admitted — the TLS
//!    handshake (or nothing, on the admin listener) and, when refused, the
//!    refusal. When it is full the loop stops accepting and new
//!    connections wait in the kernel's backlog; each pending connection is
//!    bounded by the admission timeout, so the wait is too. This is all an
//!    unauthenticated peer can occupy.
//! 2. **Admitted** ([`Budgets`]): once the class is known the connection
//!    takes a slot of its class at once, or is refused ([`super::refuse`])
//!    without ever holding one; then it is served with deadlines
//!    ([`super::connection`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::budget::Budgets;
use super::class::{Class, ClientKey};
use super::connection::{Timeouts, serve_http, stopped};
use super::refuse::refuse;

/// How long open connections get to finish after shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A connection whose client is known.
#[derive(Debug)]
pub struct Admitted<Io, E> {
    /// The stream to serve HTTP on.
    pub io: Io,
    /// Its class.
    pub class: Class,
    /// Whose connections it counts with, if the class has a per-client cap.
    pub client: Option<ClientKey>,
    /// Put into every request's extensions (e.g. the client's identity).
    pub extension: E,
}

/// What a listener does with a fresh TCP connection to learn who it is.
pub trait Admit: Send + Sync + 'static {
    /// The stream after admission (TLS, or the TCP stream itself).
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// What every request of the connection carries.
    type Extension: super::connection::RequestExtension;

    /// Handshake and identify; `None` closes the connection (already logged).
    /// The caller bounds it by the admission timeout.
    fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = Option<Admitted<Self::Io, Self::Extension>>> + Send;

    /// Called when `admit` did not finish within the admission timeout.
    fn timed_out(&self, peer: SocketAddr);
}

/// One listener: how to admit, what to serve, its budgets and deadlines.
#[derive(Debug)]
pub struct Listener<A> {
    /// `api` or `admin`, for logs.
    pub name: &'static str,
    /// How connections are identified.
    pub admit: A,
    /// What admitted connections are served.
    pub router: Router,
    /// Budgets of admitted connections.
    pub budgets: Arc<Budgets>,
    /// Connections accepted and not yet admitted (handshakes, refusals).
    pub max_pending: usize,
    /// Deadlines.
    pub timeouts: Timeouts,
}

/// Accept and serve connections until `shutdown`; then let open
/// connections finish for a grace period and close the rest.
pub async fn serve<A: Admit>(
    tcp: TcpListener,
    listener: Arc<Listener<A>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let pending = Arc::new(Semaphore::new(listener.max_pending));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = pending.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(listener = listener.name, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        // A response goes out as several small TLS records: with Nagle, the
        // last waits for the client's delayed ACK (40 ms on Linux).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(listener = listener.name, "TCP_NODELAY: {e}");
        }
        while conns.try_join_next().is_some() {}
        conns.spawn(connection(
            stream,
            peer,
            listener.clone(),
            shutdown.clone(),
            permit,
        ));
    }
    drop(tcp);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = listener.name,
            "closing connections still open after the grace period"
        );
        conns.abort_all();
    }
}

async fn connection<A: Admit>(
    tcp: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener<A>>,
    shutdown: watch::Receiver<bool>,
    pending: OwnedSemaphorePermit,
) {
    let within = listener.timeouts.admission;
    let admitted = match tokio::time::timeout(within, listener.admit.admit(tcp, peer)).await {
        Ok(Some(admitted)) => admitted,
        Ok(None) => return,
        Err(_) => {
            listener.admit.timed_out(peer);
            return;
        }
    };
    let (class, name) = (admitted.class, listener.name);
    let slot = match listener.budgets.try_admit(class, admitted.client) {
        Ok(slot) => slot,
        Err(refused) => {
            tracing::info!(listener = name, %peer, %class, "connection refused: {refused}");
            refuse(admitted.io, refused, within).await;
            return;
        }
    };
    drop(pending);
    let served = serve_http(
        admitted.io,
        listener.router.clone(),
        admitted.extension,
        listener.timeouts,
        shutdown,
    )
    .await;
    if let Err(e) = served {
        tracing::debug!(listener = name, %peer, %class, "connection ended: {e}");
    }
    drop(slot);
}
