//! Serving one admitted HTTP/1.1 connection: a header deadline (hyper's,
//! which also bounds an idle keep-alive connection), a whole-request
//! deadline and a minimum body rate ([`super::deadline`]), and a graceful
//! stop on shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::deadline::{BodyRules, TimedBody};
use super::linger::Lingering;

/// The deadlines every request on a listener is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the moment the connection waits for a request until its headers are in.
    pub header: Duration,
    /// From the same moment until the body is complete (at least `header`).
    pub request: Duration,
    /// The minimum body rate after a grace period.
    pub body: BodyRules,
    /// Handshake, or answering a refusal: how long a connection may stay
    /// unadmitted.
    pub admission: Duration,
}

/// What a connection puts into every one of its requests' extensions.
pub trait RequestExtension: Clone + Send + Sync + 'static {
    /// Insert into a request's extensions.
    fn insert_into(&self, extensions: &mut axum::http::Extensions);
}

/// Nothing (the plain admin listener).
impl RequestExtension for () {
    fn insert_into(&self, _: &mut axum::http::Extensions) {}
}

/// Both values, each under its own type (the mTLS listener: the client's
/// identity and the connection's facts).
impl<A, B> RequestExtension for (A, B)
where
    A: Clone + Send + Sync + 'static,
    B: Clone + Send + Sync + 'static,
{
    fn insert_into(&self, extensions: &mut axum::http::Extensions) {
        extensions.insert(self.0.clone());
        extensions.insert(self.1.clone());
    }
}

/// Serve `io` until the client closes, a deadline passes, or `shutdown`
/// says stop (then the request in flight finishes). Every request carries
/// `extension` (e.g. the client's identity) in its extensions.
pub(super) async fn serve_http<Io, E>(
    io: Io,
    router: Router,
    extension: E,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: RequestExtension,
{
    // When the connection last started waiting for a request: the request
    // deadline runs from there, so slow headers leave less time for the body.
    let waiting_since = Arc::new(Mutex::new(Instant::now()));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let headers_at = Instant::now();
        let since = *waiting_since.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = since + timeouts.request;
        let (mut parts, body) = req.into_parts();
        extension.insert_into(&mut parts.extensions);
        let body = axum::body::Body::new(TimedBody::new(body, headers_at, deadline, timeouts.body));
        let response = router
            .clone()
            .oneshot(hyper::Request::from_parts(parts, body));
        let waiting_since = waiting_since.clone();
        async move {
            let response = response.await;
            *waiting_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            response
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .serve_connection(TokioIo::new(Lingering::new(io)), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Resolves once shutdown was requested (or the sender is gone).
pub(super) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
