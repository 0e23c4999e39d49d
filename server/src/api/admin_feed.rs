//! What the admin feed routes share: their query (`device`, `since_ms`,
//! `level`, `source`/`workload`, `limit`, `order`, `cursor`), the JSON of
//! one item, the filters applied after decoding (level and source live in
//! the postcard payload), and reading one page of history.
//!
//! A page (`{"items": [...], "next": "<cursor>"}`) is read from the store
//! in chunks until `limit` items pass the filters or [`MAX_SCANNED`] rows
//! were read; `next` is there when more may follow (also when the scan
//! bound stopped the read: the client goes on from there). By device time
//! (the default) pages go from the newest back, each page's items oldest
//! first (as the routes always answered); by arrival (`order=arrival`)
//! pages go forward, oldest first.

use axum::http::StatusCode;
use flotta_proto::payload::{Level, Payload};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::cursor::Cursor;
use crate::controller::rfc3339;
use crate::device_id::DeviceId;
use crate::store::{FeedKind, FeedOrder, FeedQuery, FeedRow, Store, StoreError};

/// Rows read from the store for one request, at most.
pub(super) const MAX_SCANNED: usize = 100_000;
/// Items of one page, at most.
pub(super) const MAX_LIMIT: usize = 10_000;
const CHUNK: usize = 1000;

/// The query of the feed routes (each uses what applies to it).
#[derive(Debug, Default, Deserialize)]
pub(super) struct FeedParams {
    device: Option<String>,
    since_ms: Option<u64>,
    level: Option<String>,
    source: Option<String>,
    /// Old name of `source` (log lines of one workload).
    workload: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
    cursor: Option<String>,
}

/// A parsed and checked feed request.
#[derive(Debug, Clone)]
pub(super) struct Feed {
    pub(super) kind: FeedKind,
    pub(super) device: Option<DeviceId>,
    pub(super) since_ms: u64,
    pub(super) level: Option<Level>,
    pub(super) source: Option<String>,
    pub(super) limit: usize,
    pub(super) order: FeedOrder,
    pub(super) cursor: Option<Cursor>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// `info`, `warn` (or `warning`), `error`.
pub(super) fn parse_level(text: &str) -> Result<Level, ApiError> {
    match text.to_ascii_lowercase().as_str() {
        "info" => Ok(Level::Info),
        "warn" | "warning" => Ok(Level::Warn),
        "error" => Ok(Level::Error),
        _ => Err(bad(format!(
            "invalid level {text:?}: one of info, warn, error"
        ))),
    }
}

impl FeedParams {
    /// Check the query of a route reading `kind`; `path_device` is the
    /// device in the path (it wins over `?device=`), `default_limit` the
    /// page size when none is asked.
    pub(super) fn parse(
        self,
        kind: FeedKind,
        path_device: Option<&str>,
        default_limit: usize,
    ) -> Result<Feed, ApiError> {
        let device = match path_device.or(self.device.as_deref()) {
            Some(d) => Some(DeviceId::parse(d).map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        let order = match self.order.as_deref() {
            None | Some("time") => FeedOrder::DeviceTime,
            Some("arrival") => FeedOrder::Arrival,
            Some(o) => return Err(bad(format!("invalid order {o:?}: time or arrival"))),
        };
        let cursor = match self.cursor.as_deref() {
            Some(c) if !c.is_empty() => Some(Cursor::decode(c).map_err(bad)?),
            _ => None,
        };
        Ok(Feed {
            kind,
            device,
            since_ms: self.since_ms.unwrap_or(0),
            level: self.level.as_deref().map(parse_level).transpose()?,
            source: self.source.or(self.workload),
            limit: self.limit.unwrap_or(default_limit).clamp(1, MAX_LIMIT),
            order,
            cursor,
        })
    }
}

impl Feed {
    /// The store query of this feed from `after`, `limit` rows.
    pub(super) fn query(&self, after: Option<crate::store::FeedKey>, limit: usize) -> FeedQuery {
        FeedQuery {
            kind: self.kind,
            device: self.device.clone(),
            order: self.order,
            after,
            since_ms: self.since_ms,
            limit,
        }
    }

    /// The row as the routes answer it, when it passes the filters.
    pub(super) fn item(&self, row: &FeedRow) -> Option<Value> {
        let at_least = |l: Level| self.level.is_none_or(|min| l >= min);
        match Payload::decode(&row.payload).ok()? {
            Payload::Event(e) if self.kind == FeedKind::Events && at_least(e.level) => {
                Some(json!({
                    "device": row.key.device,
                    "time": rfc3339(row.at_ms),
                    "received": rfc3339(row.received_ms),
                    "type": e.level.as_str(),
                    "level": e.level.as_str(),
                    "reason": e.reason,
                    "message": e.message,
                }))
            }
            Payload::Log(l)
                if self.kind == FeedKind::Logs
                    && at_least(l.level)
                    && self.source.as_ref().is_none_or(|s| *s == l.source) =>
            {
                Some(json!({
                    "device": row.key.device,
                    "time": rfc3339(row.at_ms),
                    "received": rfc3339(row.received_ms),
                    "source": l.source,
                    "level": l.level.as_str(),
                    "message": l.message,
                }))
            }
            _ => None,
        }
    }

    /// One page of history: `{"items": [...], "next": cursor}` (no `next`
    /// at the end).
    pub(super) fn page(&self, store: &dyn Store) -> Result<Value, PageError> {
        let mut after = match &self.cursor {
            Some(c) if c.order != self.order => {
                return Err(PageError::Cursor(
                    "invalid cursor: it belongs to the other order (order=time or order=arrival)"
                        .into(),
                ));
            }
            Some(c) => Some(c.key.clone()),
            None => None,
        };
        let mut items = Vec::new();
        let mut scanned = 0;
        let mut more = true;
        while items.len() < self.limit && scanned < MAX_SCANNED {
            let rows = store.feed(&self.query(after.clone(), CHUNK))?;
            scanned += rows.len();
            more = rows.len() == CHUNK;
            for row in &rows {
                after = Some(row.key.clone());
                if let Some(item) = self.item(row) {
                    items.push(item);
                    if items.len() == self.limit {
                        more = true;
                        break;
                    }
                }
            }
            if !more {
                break;
            }
        }
        if self.order == FeedOrder::DeviceTime {
            items.reverse();
        }
        let mut page = json!({ "items": items });
        if let (true, Some(key)) = (more, after) {
            let next = Cursor {
                order: self.order,
                key,
            };
            page["next"] = Value::String(next.encode());
        }
        Ok(page)
    }
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageError {
    /// The cursor does not fit the request.
    #[error("{0}")]
    Cursor(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PageError {
    /// Whether trying again may help.
    pub(super) fn is_retriable(&self) -> bool {
        match self {
            PageError::Cursor(_) => false,
            PageError::Store(e) => e.is_retriable(),
        }
    }
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        let status = match &e {
            PageError::Cursor(_) => StatusCode::BAD_REQUEST,
            _ if e.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}
