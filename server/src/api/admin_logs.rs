//! `GET /apis/devices/{id}/logs` on the admin listener: a device's log
//! lines (the agent's and its workloads'), for `flotta-server logs`, in
//! pages with a cursor (`admin_feed.rs`): `?source=S` (or its old name
//! `?workload=S`) keeps the lines of one source, `?since_ms=T` those at or
//! after device time T, `?level=L` those of at least that severity,
//! `?limit=N` (default 200, at most 10 000). At most
//! `admin_feed::MAX_SCANNED` records are read per request, so a chatty
//! workload cannot make a question about a quiet one unbounded. Following:
//! `admin_stream.rs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::Value;

use super::admin_feed::FeedParams;
use super::{ApiError, AppState};
use crate::store::FeedKind;

const DEFAULT_LIMIT: usize = 200;

/// `{"items": [{"device", "time", "received", "source", "level",
/// "message"}], "next"}`, each page oldest first.
pub(super) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    let feed = q.parse(FeedKind::Logs, Some(&id), DEFAULT_LIMIT)?;
    super::admin_events::page(&state, feed).await
}
