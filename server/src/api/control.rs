//! Flotta's control routes: `GET control/{id}/in` (commands for the device)
//! and `POST control/{id}/out` (the device's control messages). Both answer
//! JSON, as Flotta's swagger declares for the yggdrasil routes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Action;
use super::body::{read_limited, require_json};
use super::error::ApiError;
use super::flotta::{new_message, now_rfc3339};
use super::{AppState, Peer, authorized_device};
use crate::models::{Message, MessageResponse};

/// `GET control/{id}/in`: a `message` without content (nothing to do), or
/// a `disconnect` command for a device the server no longer knows (as
/// Flotta does).
pub(super) async fn get_control(
    State(state): State<AppState>,
    Peer(identity): Peer,
    Path(device_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = authorized_device(&state, &identity, &device_id, Action::GetControl)?;
    match state.service.configuration(id).await {
        Ok(_) => {
            let nothing = Message {
                message_id: Some(uuid::Uuid::new_v4().to_string()),
                version: Some(1),
                sent: Some(now_rfc3339(&state)),
                ..Message::default()
            };
            Ok(Json(nothing).into_response())
        }
        Err(crate::service::ServiceError::NotFound(_)) => {
            let command = json!({ "command": "disconnect", "arguments": {} });
            Ok(Json(new_message(&state, "command", None, command)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST control/{id}/out`: accepted and ignored (as in Flotta) once the
/// body is a JSON message; answers a `message-response` naming the message.
pub(super) async fn post_control(
    State(state): State<AppState>,
    Peer(identity): Peer,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorized_device(&state, &identity, &device_id, Action::PostControl)?;
    require_json(&headers)?;
    let body = read_limited(body, state.service.config().max_json_bytes).await?;
    let value: Value = serde_json::from_slice(&body).map_err(crate::decode::BadBody::from)?;
    let Some(message) = value.as_object() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object (a Flotta message)",
        ));
    };
    let field = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
    let response = MessageResponse {
        message_id: field("message_id"),
        directive: field("directive"),
        content: None,
        metadata: None,
    };
    Ok(Json(response).into_response())
}
