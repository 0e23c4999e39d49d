//! Reading request bodies with a size limit.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
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
