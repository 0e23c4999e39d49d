//! `GET /apis/devices/{id}/events` on the admin listener: a device's newest
//! events, from batches and Flotta heartbeats alike, for `describe`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use flotta_proto::payload::{Level, Payload};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::controller::rfc3339;
use crate::device_id::DeviceId;

/// Events listed when the request names no `limit`.
const DEFAULT_LIMIT: usize = 50;

/// `?limit=` of the events route.
#[derive(Debug, Deserialize)]
pub(super) struct LimitQuery {
    limit: Option<usize>,
}

pub(super) fn level_word(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// A store failure as the admin API answers it: 503 when a retry may
/// succeed, else 500, with the message.
pub(super) fn store_failure(e: crate::store::StoreError) -> (StatusCode, Json<Value>) {
    let status = if e.is_retriable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, Json(json!({"message": e.to_string()})))
}

/// `{"items": [{"time", "type", "reason", "message"}]}`, oldest first.
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let fail = |status: StatusCode, message: String| (status, Json(json!({"message": message})));
    let id = DeviceId::parse(&id).map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    let store = state.service.store().clone();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    let stored = tokio::task::spawn_blocking(move || store.events(&id, limit))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(store_failure)?;
    let items: Vec<Value> = stored
        .iter()
        .filter_map(|e| match Payload::decode(&e.payload) {
            Ok(Payload::Event(ev)) => Some(json!({
                "time": rfc3339(e.at_ms),
                "type": level_word(ev.level),
                "reason": ev.reason,
                "message": ev.message,
            })),
            _ => None,
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
