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
    /// Console cookies carry `Secure` (the listener speaks TLS).
    pub secure_cookies: bool,
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

/// Whether `path` is a console page (a browser is sent to sign in).
fn is_page(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

fn sign_in_first(path: &str) -> Response {
    let next = crate::console::fleet::urlencoding(path);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/ui/login?next={next}"))],
    )
        .into_response()
}

/// A state-changing request authenticated by the console's cookie must
/// come from our own pages (the cookie is SameSite=Strict too): its
/// `Origin` names the host it was sent to, or the browser says
/// `Sec-Fetch-Site: same-origin`. Requests with an `Authorization` header
/// or a certificate are not sent by a browser on its own: not checked.
fn same_origin(headers: &axum::http::HeaderMap) -> Result<(), Denied> {
    let by_cookie = !headers.contains_key(header::AUTHORIZATION)
        && headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.contains(super::COOKIE));
    if !by_cookie {
        return Ok(());
    }
    let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    let host = text(header::HOST);
    let origin_host = text(header::ORIGIN).map(|o| o.split_once("://").map_or(o, |(_, h)| h));
    let ok = match (origin_host, host) {
        (Some(o), Some(h)) => o == h,
        _ => text(axum::http::HeaderName::from_static("sec-fetch-site")) == Some("same-origin"),
    };
    if ok {
        Ok(())
    } else {
        Err(Denied::Forbidden(
            "a change made with the console's cookie must come from the console's own pages".into(),
        ))
    }
}

/// Authenticate, authorise, serve, audit.
pub async fn guard(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(MAX_AUDIT_PATH).collect();
    let Some(needed) = required_role(&method, &path) else {
        if path.starts_with("/ui/log") {
            req.extensions_mut().insert(guard.auth.clone());
            req.extensions_mut()
                .insert(crate::console::login::SecureCookies(guard.secure_cookies));
        }
        return next.run(req).await;
    };
    let certificate = req
        .extensions()
        .get::<AdminPeer>()
        .and_then(|p| p.0.as_ref());
    let principal = match guard.auth.authenticate(req.headers(), certificate) {
        Ok(p) => p,
        Err(Denied::Unauthenticated(_)) if is_read(&method) && is_page(&path) => {
            return sign_in_first(&path);
        }
        Err(denied) => return refusal(&denied),
    };
    if !is_read(&method)
        && let Err(denied) = same_origin(req.headers())
    {
        let response = refusal(&denied);
        let detail = denied.to_string();
        audit(
            &guard,
            &principal,
            &method,
            &path,
            response.status(),
            &detail,
        )
        .await;
        return response;
    }
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
