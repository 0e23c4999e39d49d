//! `GET /apis/audit` on the admin listener (admin role): the audit log,
//! newest first; `?limit=N` (default 100, at most 1000), `?before=ID` for
//! the page after a record.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::controller::rfc3339;
use crate::store::StoreError;

type Failure = (StatusCode, Json<Value>);

fn fail(status: StatusCode, message: impl ToString) -> Failure {
    (status, Json(json!({"message": message.to_string()})))
}

fn store_failure(e: StoreError) -> Failure {
    if e.is_retriable() {
        fail(StatusCode::SERVICE_UNAVAILABLE, e)
    } else {
        fail(StatusCode::INTERNAL_SERVER_ERROR, e)
    }
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
) -> Result<Json<Value>, Failure> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let store = state.service.store().clone();
    let records = tokio::task::spawn_blocking(move || store.audit_log(q.before, limit))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?
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
