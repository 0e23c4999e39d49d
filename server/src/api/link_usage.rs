//! Counting the TLS link statistics of device requests
//! (`store/link_days.rs`): the batch route counts its own, in its
//! transaction ([`LinkCounted`] on its answer says so); this layer counts
//! every other request of a device certificate (Flotta's JSON routes, and
//! requests refused before a batch was stored) after the answer: the
//! connection's window if not yet counted, the request body's
//! `Content-Length`, the answer body's length — with a separate upsert for
//! a request that writes (POST), and in memory for a poll (GET: Flotta's
//! device worker polls twice every 5 s; a write per poll would multiply
//! the store's transactions), counted with the device's next write.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::HttpBody;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::link_stats::ConnectionFacts;
use crate::pki::{ClientIdentity, Role};
use crate::store::LinkUsage;

/// On an answer whose request the handler counted itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkCounted;

/// The connection's facts (absent when a request did not come through the
/// mTLS listener, e.g. in router tests).
#[derive(Debug, Clone)]
pub(super) struct Connection(pub Option<Arc<ConnectionFacts>>);

impl<S: Send + Sync> FromRequestParts<S> for Connection {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Connection(
            parts.extensions.get::<Arc<ConnectionFacts>>().cloned(),
        ))
    }
}

impl Connection {
    /// The window and handshake counters this request adds (see
    /// [`ConnectionFacts::claim_window`]).
    pub(super) fn claim_window(&self) -> LinkUsage {
        self.0
            .as_ref()
            .map(|f| f.claim_window())
            .unwrap_or_default()
    }
}

/// The middleware: count a device's request the handler did not count.
pub(super) async fn count_link(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let device = match req.extensions().get::<ClientIdentity>().map(|i| &i.role) {
        Some(Role::Device { id, .. }) => Some(id.clone()),
        _ => None,
    };
    let facts = req.extensions().get::<Arc<ConnectionFacts>>().cloned();
    let reads_only = matches!(*req.method(), Method::GET | Method::HEAD);
    let bytes_up = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let response = next.run(req).await;
    let Some(id) = device else {
        return response;
    };
    if response.extensions().get::<LinkCounted>().is_some() {
        return response;
    }
    let hint = response.body().size_hint();
    let mut usage = Connection(facts).claim_window();
    usage.bytes_up = bytes_up;
    usage.bytes_down = hint.exact().unwrap_or(hint.lower());
    if reads_only {
        // A poll writes nothing: its counts wait in memory for the
        // device's next write (a poll costs no transaction).
        state.service.tally_tls_usage(&id, &usage);
        return response;
    }
    let service = state.service.clone();
    tokio::spawn(async move { service.record_tls_usage(id, usage).await });
    response
}
