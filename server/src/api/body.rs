//! Reading request bodies: a size limit, the listener's deadlines, and the
//! JSON content type Flotta's routes require.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;

use super::error::ApiError;
use crate::decode::BadBody;
use crate::listener::BodyTimeout;

/// Read the whole body, refusing (413) more than `limit` bytes: at once,
/// without reading anything, when the declared `Content-Length` (the body's
/// exact size hint) is over the limit; while streaming otherwise (chunked).
/// A body cut by the listener's deadline or minimum rate answers 408.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(BadBody::TooLarge(limit).into());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BadBody::TooLarge(limit).into())
        }
        Err(e) => match BodyTimeout::find(&*e) {
            Some(timeout) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                timeout.to_string(),
            )),
            None => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            )),
        },
    }
}

/// Refuse (415) a body whose `Content-Type` is not JSON: `application/json`,
/// optionally with parameters (`; charset=utf-8`), compared case-insensitively.
/// A missing content type is refused too: Flotta's device worker and our
/// agent always send one.
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type must be application/json, not {}",
                other.map_or_else(|| "none".to_owned(), |t| format!("\"{t}\""))
            ),
        )),
    }
}
