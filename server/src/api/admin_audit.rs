//! `GET /apis/audit` on the admin listener (admin role): the audit log,
//! newest first; `?limit=N` (default 100, at most 1000), `?before=ID` for
//! the page after a record.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::AppState;
use crate::controller::rfc3339;
use crate::store::StoreError;

/// 503 when a retry may succeed, else 500, with the store's message.
fn store_failure(e: StoreError) -> ApiError {
    let status = if e.is_retriable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    ApiError::new(status, e.to_string())
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The route's query.
#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

/// `{"items": [{id, time, principal, role, via, method, path, status, detail}]}`.
pub(super) async fn list(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let store = state.service.store().clone();
    let records = tokio::task::spawn_blocking(move || store.audit_log(q.before, limit))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(store_failure)?;
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            let e = &r.entry;
            json!({
                "id": r.id,
                "time": rfc3339(e.at_ms),
                "principal": e.principal,
                "role": e.role,
                "via": e.via,
                "method": e.method,
                "path": e.path,
                "status": e.status,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
