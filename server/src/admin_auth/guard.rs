//! The admin listener's middleware: authenticate, authorise by
//! [`required_role`], and write one audit record for every request that
//! may change state — done or refused for its role — after its answer is
//! known (who, what, when, the status, and what the handler said it did).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AdminAuth, Denied, Principal, is_read, required_role};
use crate::clock::Clock;
use crate::pki::ClientIdentity;
use crate::store::{AuditEntry, Store};

/// The verified client certificate of an admin connection (TLS), if the
/// client sent one; put into every request's extensions by the listener.
#[derive(Debug, Clone, Default)]
pub struct AdminPeer(pub Option<ClientIdentity>);

/// What a handler did, in words, for the audit record (a response
/// extension; e.g. the objects `apply` changed).
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

/// The middleware's state.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The rules.
    pub auth: AdminAuth,
    /// Where audit records go.
    pub store: Arc<dyn Store>,
    /// When they happen.
    pub clock: Arc<dyn Clock>,
}

/// Longest path kept in an audit record.
const MAX_AUDIT_PATH: usize = 512;
/// Longest detail kept in an audit record.
const MAX_AUDIT_DETAIL: usize = 4096;

fn refusal(denied: &Denied) -> Response {
    let (status, message) = match denied {
        Denied::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, m),
        Denied::Forbidden(m) => (StatusCode::FORBIDDEN, m),
    };
    let mut response = (status, Json(json!({ "message": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"flotta-admin\""),
        );
    }
    response
}

/// Authenticate, authorise, serve, audit.
pub async fn guard(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(MAX_AUDIT_PATH).collect();
    let Some(needed) = required_role(&method, &path) else {
        return next.run(req).await;
    };
    let certificate = req
        .extensions()
        .get::<AdminPeer>()
        .and_then(|p| p.0.as_ref());
    let principal = match guard.auth.authenticate(req.headers(), certificate) {
        Ok(p) => p,
        Err(denied) => return refusal(&denied),
    };
    if principal.role < needed {
        let denied = Denied::Forbidden(format!(
            "{} has the {} role; {method} {path} needs the {} role",
            principal.name,
            principal.role.as_str(),
            needed.as_str()
        ));
        let response = refusal(&denied);
        if !is_read(&method) {
            audit(
                &guard,
                &principal,
                &method,
                &path,
                response.status(),
                &denied.to_string(),
            )
            .await;
        }
        return response;
    }
    req.extensions_mut().insert(principal.clone());
    let response = next.run(req).await;
    if !is_read(&method) {
        let detail = response
            .extensions()
            .get::<AuditDetail>()
            .map(|d| d.0.clone())
            .unwrap_or_default();
        audit(
            &guard,
            &principal,
            &method,
            &path,
            response.status(),
            &detail,
        )
        .await;
    }
    response
}

/// Store one audit record; a failure is logged (the change is already
/// made and its answer written).
async fn audit(
    guard: &Guard,
    principal: &Principal,
    method: &axum::http::Method,
    path: &str,
    status: StatusCode,
    detail: &str,
) {
    let entry = AuditEntry {
        at_ms: guard.clock.now_ms(),
        principal: principal.name.clone(),
        role: principal.role.as_str().into(),
        via: principal.via.describe(),
        method: method.as_str().into(),
        path: path.into(),
        status: status.as_u16(),
        detail: detail.chars().take(MAX_AUDIT_DETAIL).collect(),
    };
    tracing::info!(
        principal = %entry.principal, role = %entry.role, via = %entry.via,
        method = %entry.method, path = %entry.path, status = entry.status,
        "admin request"
    );
    let store = guard.store.clone();
    let written = tokio::task::spawn_blocking(move || store.append_audit(&entry)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("audit record not stored: {e}"),
        Err(e) => tracing::error!("audit record not stored: {e}"),
    }
}
