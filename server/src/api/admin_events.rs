//! `GET /apis/events` (every device's events, or `?device=`) and
//! `GET /apis/devices/{id}/events` on the admin listener: events from
//! batches and Flotta heartbeats alike, in pages with a cursor
//! (`admin_feed.rs`: `since_ms`, `level` = at least that severity, `limit`
//! (default 50), `order=time|arrival`, `cursor`), for `describe` and
//! `flotta-server events`. Following: `admin_stream.rs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::Value;

use super::admin_feed::{Feed, FeedParams};
use super::{ApiError, AppState};
use crate::store::FeedKind;

/// Events listed when the request names no `limit`.
const DEFAULT_LIMIT: usize = 50;

/// One page of `feed` read on the blocking pool.
pub(super) async fn page(state: &AppState, feed: Feed) -> Result<Json<Value>, ApiError> {
    let store = state.service.store().clone();
    let page = tokio::task::spawn_blocking(move || feed.page(&*store))
        .await
        .map_err(|e| {
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        })??;
    Ok(Json(page))
}

/// `{"items": [{"device", "time", "received", "type", "level", "reason",
/// "message"}], "next"}`: one device's events.
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    let feed = q.parse(FeedKind::Events, Some(&id), DEFAULT_LIMIT)?;
    page(&state, feed).await
}

/// The same, for every device (or `?device=`).
pub(super) async fn fleet_events(
    State(state): State<AppState>,
    Query(q): Query<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    let feed = q.parse(FeedKind::Events, None, DEFAULT_LIMIT)?;
    page(&state, feed).await
}
