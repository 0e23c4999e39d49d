//! `GET /apis/devices/{id}/logs` on the admin listener: a device's newest
//! log lines (the agent's and its workloads'), for `flotta-server logs`.
//! `?workload=W` keeps the lines of one workload (their `source`),
//! `?since_ms=T` those at or after device time T, `?limit=N` the newest N
//! (default 200, at most 10 000). The store is read newest first in
//! pages, at most [`MAX_SCANNED`] records per request, so a chatty
//! workload cannot make a question about a quiet one unbounded.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use flotta_proto::payload::Payload;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin_events::{level_word, store_failure};
use crate::controller::rfc3339;
use crate::device_id::DeviceId;

const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 10_000;
/// Records read from the store for one request, at most.
pub(super) const MAX_SCANNED: usize = 100_000;
const PAGE: usize = 1000;

/// The route's query.
#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    workload: Option<String>,
    since_ms: Option<u64>,
    limit: Option<usize>,
}

/// `{"items": [{"time", "source", "level", "message"}]}`, oldest first.
pub(super) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let fail = |status: StatusCode, message: String| (status, Json(json!({"message": message})));
    let id = DeviceId::parse(&id).map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let store = state.service.store().clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut items = Vec::new();
        let mut offset = 0;
        while items.len() < limit && offset < MAX_SCANNED {
            let page = store.logs(&id, q.since_ms.unwrap_or(0), PAGE, offset)?;
            offset += page.len();
            for r in &page {
                let Ok(Payload::Log(l)) = Payload::decode(&r.payload) else {
                    continue;
                };
                if q.workload.as_ref().is_some_and(|w| *w != l.source) {
                    continue;
                }
                items.push(json!({
                    "time": rfc3339(r.at_ms),
                    "source": l.source,
                    "level": level_word(l.level),
                    "message": l.message,
                }));
                if items.len() == limit {
                    break;
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        items.reverse();
        Ok::<_, crate::store::StoreError>(items)
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(store_failure)?;
    Ok(Json(json!({ "items": found })))
}
