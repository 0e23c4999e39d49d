//! Our compact route: `POST batch/{id}` with a postcard `BatchRequest`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flotta_proto::batch::BATCH_CONTENT_TYPE;

use super::auth::Action;
use super::body::read_limited;
use super::error::ApiError;
use super::link_usage::{Connection, LinkCounted};
use super::{AppState, Peer, authorized_device};
use crate::decode::decode_encoded_batch;
use flotta_proto::compress::{DEFLATE, deflate_if_smaller};

/// `POST batch/{id}`: store the records (deduplicated), answer what is
/// durably stored and the configuration if the device's is stale.
pub(super) async fn post_batch(
    State(state): State<AppState>,
    Peer(identity): Peer,
    connection: Connection,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = authorized_device(&state, &identity, &device_id, Action::Batch)?;
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
    let limit = state.service.config().max_batch_bytes;
    let body = read_limited(body, limit).await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not ASCII)"));
    let batch = decode_encoded_batch(&body, encoding, limit)?;
    // An older agent cannot read fields it does not know: answer in its format.
    let format = batch.format;
    // From here on this handler counts the request (`store/link_days.rs`):
    // in the batch's transaction, its answer's bytes with the next write.
    let mut usage = connection.claim_window();
    usage.bytes_up = u64::try_from(body.len()).unwrap_or(u64::MAX);
    let response = match state.service.ingest_batch(id.clone(), batch, usage).await {
        Ok(r) => r,
        Err(e) => {
            let mut refused = ApiError::from(e).into_response();
            refused.extensions_mut().insert(LinkCounted);
            return Ok(refused);
        }
    };
    // A configuration (pod specs, JSON) shrinks several times; an ack alone stays plain.
    let accepts_deflate = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(DEFLATE))
        });
    let (body, compressed) = match accepts_deflate {
        true => deflate_if_smaller(response.encode_for(format)),
        false => (response.encode_for(format), false),
    };
    state.service.answered_tls(&id, body.len());
    let mut response = ([(header::CONTENT_TYPE, BATCH_CONTENT_TYPE)], body).into_response();
    response.extensions_mut().insert(LinkCounted);
    if compressed {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static(DEFLATE),
        );
    }
    Ok(response)
}
