//! Decommissioning on the admin listener: `POST /apis/devices/{id}/decommission`
//! (`?actor=NAME&purge=true`), and deleting an EdgeDevice (embedded mode),
//! which decommissions its device. The actor recorded is the authenticated
//! principal (token or certificate name); on the open loopback listener it
//! is what the client says.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::admin_auth::{Principal, Via};
use crate::device_id::DeviceId;
use crate::service::ServiceError;

/// Recorded when a client names no actor.
pub(super) const UNKNOWN_ACTOR: &str = "unknown (admin listener)";

/// `?actor=&purge=` of decommissioning requests.
#[derive(Debug, Deserialize)]
pub(super) struct DecommissionQuery {
    /// Who asks (recorded in the device's events; not authenticated).
    pub(super) actor: Option<String>,
    /// Also delete the device's records, events and configuration.
    #[serde(default)]
    pub(super) purge: bool,
}

type Failure = (StatusCode, Json<Value>);

fn fail(status: StatusCode, message: impl ToString) -> Failure {
    (status, Json(json!({"message": message.to_string()})))
}

/// The actor to record: the authenticated principal's name, else the one
/// given (trimmed, at most 256 characters, no control characters).
pub(super) fn actor(
    principal: Option<&Principal>,
    given: Option<String>,
) -> Result<String, Failure> {
    if let Some(p) = principal.filter(|p| p.via != Via::Local) {
        return Ok(p.name.clone());
    }
    let actor = given.unwrap_or_default().trim().to_owned();
    if actor.chars().count() > 256 || actor.chars().any(char::is_control) {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "actor must be at most 256 characters without control characters",
        ));
    }
    Ok(if actor.is_empty() {
        UNKNOWN_ACTOR.to_owned()
    } else {
        actor
    })
}

/// Decommission `id` through the service; maps errors to admin answers.
pub(super) async fn run(
    state: &AppState,
    id: DeviceId,
    actor: String,
    purge: bool,
) -> Result<Json<Value>, Failure> {
    let shown = id.to_string();
    match state.service.decommission(id, actor.clone(), purge).await {
        Ok(()) => {}
        Err(e @ ServiceError::NotFound(_)) => return Err(fail(StatusCode::NOT_FOUND, e)),
        Err(e) if e.is_retriable() => return Err(fail(StatusCode::SERVICE_UNAVAILABLE, e)),
        Err(e) => return Err(fail(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
    if let Err(e) = state.controller.run_now().await {
        tracing::warn!("controller pass after decommissioning failed: {e}");
    }
    Ok(Json(
        json!({"device": shown, "outcome": "decommissioned", "actor": actor, "purged": purge}),
    ))
}

/// `POST /apis/devices/{id}/decommission`.
pub(super) async fn decommission(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DecommissionQuery>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<Value>, Failure> {
    let id = DeviceId::parse(&id).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let actor = actor(principal.as_deref(), q.actor)?;
    run(&state, id, actor, q.purge).await
}
