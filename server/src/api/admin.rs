//! The admin listener (plain HTTP on loopback, TLS elsewhere; who may do
//! what: `admin_auth`): `/healthz`, `/readyz`,
//! `/metrics`, the object API under `/apis` (see `admin_objects`), device
//! events and log lines in pages (`admin_events`, `admin_logs`) and
//! followed as server-sent events (`admin_stream`), decommissioning (`admin_lifecycle`) and link
//! addresses (`admin_links`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

use super::admin_objects as objects;

use super::AppState;
use crate::admin_auth::guard::Guard;

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.service.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

/// Routes of the admin listener, every one behind `guard` (authentication,
/// roles, audit: `admin_auth`), unknown paths included.
pub fn router(state: AppState, guard: Guard) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(objects::metrics))
        .route("/apis/apply", post(objects::apply))
        .route("/apis/audit", get(super::admin_audit::list))
        .route("/apis/devices/{id}/approve", post(objects::approve))
        .route(
            "/apis/devices/{id}/decommission",
            post(super::admin_lifecycle::decommission),
        )
        .route("/apis/devices/{id}/links", get(super::admin_links::list))
        .route(
            "/apis/devices/{id}/links/{kind}/{address}",
            post(super::admin_links::bind).delete(super::admin_links::unbind),
        )
        .route(
            "/apis/devices/{id}/events",
            get(super::admin_events::events),
        )
        .route("/apis/devices/{id}/logs", get(super::admin_logs::logs))
        .route(
            "/apis/devices/{id}/logs/stream",
            get(super::admin_stream::logs),
        )
        .route("/apis/events", get(super::admin_events::fleet_events))
        .route("/apis/events/stream", get(super::admin_stream::events))
        .route("/apis/{kind}", get(objects::list))
        .route(
            "/apis/{kind}/{namespace}/{name}",
            get(objects::get).delete(objects::delete),
        )
        .merge(crate::console::routes())
        .fallback(super::not_found)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::admin_auth::guard::guard,
        ))
        .with_state(state)
}
