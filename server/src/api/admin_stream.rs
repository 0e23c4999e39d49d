//! Following the feeds with server-sent events: `GET /apis/events/stream`
//! (every device's events, or `?device=`) and
//! `GET /apis/devices/{id}/logs/stream`, with the filters of the pages
//! (`admin_feed.rs`; the order is always arrival).
//!
//! Each item is an SSE event (`event: event` or `event: log`, `data:` the
//! item's JSON as the pages have it) whose `id` is the cursor after it: a
//! client that reconnects with `Last-Event-ID` (or `?cursor=`) goes on
//! from there. Without one the stream starts now. A [`Follower`] reads
//! the store about once a second, at once when this process ingested
//! something ([`crate::service::EdgeService::ingested`]), and re-reads a
//! window behind its position for rows that committed late. A comment
//! every [`KEEP_ALIVE`] keeps proxies and clients from timing out.
//!
//! Streams are bounded ([`Streams`], `max_admin_streams`; beyond it 503
//! with `Retry-After`) so that they cannot take every admin connection,
//! and end when the server shuts down or the client goes away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, mpsc, watch};

use super::admin_feed::{Feed, FeedParams};
use super::cursor::Cursor;
use super::{ApiError, AppState};
use crate::store::{FeedKey, FeedKind, FeedOrder, Follower};

/// Between two reads of the store when nothing wakes the stream earlier.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Between two keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// `Retry-After` of a refused stream, in seconds.
const RETRY_AFTER_SECONDS: u64 = 5;

/// The streams of the admin listener: how many may be open, and the
/// server's shutdown signal that ends them.
#[derive(Debug, Clone)]
pub struct Streams {
    permits: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
}

impl Streams {
    /// At most `max` streams at once, all ended when `shutdown` turns true.
    pub fn new(max: usize, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            shutdown,
        }
    }
}

/// Follow events.
pub(super) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FeedParams>,
) -> Result<Response, ApiError> {
    let feed = q.parse(FeedKind::Events, None, 1)?;
    follow(state, headers, feed).await
}

/// Follow a device's log lines.
pub(super) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<FeedParams>,
) -> Result<Response, ApiError> {
    let feed = q.parse(FeedKind::Logs, Some(&id), 1)?;
    follow(state, headers, feed).await
}

/// Where a stream starts: `Last-Event-ID`, else `?cursor=`, else now.
fn start(headers: &HeaderMap, feed: &Feed, now_ms: u64) -> Result<FeedKey, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let cursor = match headers.get("last-event-id") {
        Some(v) => Some(Cursor::decode(v.to_str().unwrap_or("")).map_err(bad)?),
        None => feed.cursor.clone(),
    };
    match cursor {
        None => Ok(FeedKey::end_of(now_ms)),
        Some(c) if c.order == FeedOrder::Arrival => Ok(c.key),
        Some(_) => Err(bad(
            "invalid cursor: a stream goes on from an arrival cursor (an event's id, or a \
             page's next with order=arrival)"
                .into(),
        )),
    }
}

async fn follow(state: AppState, headers: HeaderMap, feed: Feed) -> Result<Response, ApiError> {
    let position = start(&headers, &feed, state.service.clock().now_ms())?;
    let Ok(permit) = state.streams.permits.clone().try_acquire_owned() else {
        let mut refused = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open streams (max_admin_streams); try again later",
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        return Ok(refused);
    };
    let store = state.service.store().clone();
    let query = feed.query(None, 0);
    let follower = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || Follower::start(&*store, query, position))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(super::admin_feed::PageError::from)?
    };
    let (tx, rx) = mpsc::channel::<Event>(64);
    let mut shutdown = state.streams.shutdown.clone();
    let mut ingested = state.service.ingested();
    let name = match feed.kind {
        FeedKind::Events => "event",
        FeedKind::Logs => "log",
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut follower = Some(follower);
        loop {
            let Some(mut f) = follower.take() else { return };
            let before = f.position().clone();
            let store = store.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let rows = f.poll(&*store);
                (f, rows)
            })
            .await;
            let Ok((f, rows)) = polled else { return };
            let mut more = false;
            match rows {
                Ok(rows) => {
                    more = rows.len() >= crate::store::POLL_SCAN / 2;
                    // The id of each item is the greatest position up to
                    // it: a late row's is the one delivered before it.
                    let mut id = Cursor {
                        order: FeedOrder::Arrival,
                        key: before,
                    };
                    for row in &rows {
                        if row.key > id.key {
                            id.key = row.key.clone();
                        }
                        let Some(item) = feed.item(row) else { continue };
                        let event = Event::default()
                            .event(name)
                            .id(id.encode())
                            .data(item.to_string());
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!("admin stream: reading the store failed: {e}"),
            }
            follower = Some(f);
            if more {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                Ok(()) = ingested.changed() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
