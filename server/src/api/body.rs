//! Reading request bodies: a size limit, and the JSON content type Flotta's
//! routes require.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::ApiError;
use crate::decode::BadBody;

/// Read the whole body, refusing (413) more than `limit` bytes.
pub(super) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BadBody::TooLarge(limit).into())
        }
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        )),
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
