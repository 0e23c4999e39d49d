//! Our compact route: `POST batch/{id}` with a postcard `BatchRequest`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flotta_proto::batch::BATCH_CONTENT_TYPE;

use super::auth::{Action, authorize};
use super::body::read_limited;
use super::error::ApiError;
use super::{AppState, Peer, parse_device_id};
use crate::decode::decode_batch;

/// `POST batch/{id}`: store the records (deduplicated), answer what is
/// durably stored and the configuration if the device's is stale.
pub(super) async fn post_batch(
    State(state): State<AppState>,
    Peer(identity): Peer,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(
        &identity,
        &device_id,
        Action::Batch,
        state.service.clock().now(),
    )?;
    let id = parse_device_id(&device_id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if content_type != Some(BATCH_CONTENT_TYPE) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type must be {BATCH_CONTENT_TYPE}"),
        ));
    }
    let body = read_limited(body, state.service.config().max_batch_bytes).await?;
    let batch = decode_batch(&body)?;
    let response = state.service.ingest_batch(id, batch).await?;
    Ok((
        [(header::CONTENT_TYPE, BATCH_CONTENT_TYPE)],
        response.encode(),
    )
        .into_response())
}
