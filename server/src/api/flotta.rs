//! Flotta's Edge API data routes: `data/{id}/in|out` (the control routes
//! are in `control.rs`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Action, authorize};
use super::body::{read_limited, require_json};
use super::error::ApiError;
use super::{AppState, Peer, authorized_device};
use crate::decode::{DataOut, decode_data_out};
use crate::models::{Message, MessageResponse, RegistrationResponse, directive};
use crate::store::EnrolOutcome;

/// 208 Already Reported: Flotta's answer to enrolment of an approved device.
const ALREADY_REPORTED: StatusCode = StatusCode::ALREADY_REPORTED;

pub(super) fn now_rfc3339(state: &AppState) -> String {
    let t = time::OffsetDateTime::from(state.service.clock().now());
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(super) fn new_message(
    state: &AppState,
    kind: &str,
    directive: Option<&str>,
    content: Value,
) -> Message {
    Message {
        kind: Some(kind.into()),
        message_id: Some(uuid::Uuid::new_v4().to_string()),
        version: Some(1),
        sent: Some(now_rfc3339(state)),
        directive: directive.map(str::to_owned),
        content: Some(content),
        ..Message::default()
    }
}

/// `POST data/{id}/out`: enrolment, registration, heartbeat.
pub(super) async fn post_data(
    State(state): State<AppState>,
    Peer(identity): Peer,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = state.service.clock().now();
    // Refuse early what no directive could make acceptable (the most
    // permissive action is registration).
    authorize(&identity, &device_id, Action::Register, now)?;
    require_json(&headers)?;
    let body = read_limited(body, state.service.config().max_json_bytes).await?;
    let (msg, out) = decode_data_out(&body)?;
    let action = match &out {
        DataOut::Enrolment(_) => Action::Enrol,
        DataOut::Registration(_) => Action::Register,
        DataOut::Heartbeat(..) => Action::Heartbeat,
    };
    let id = authorized_device(&state, &identity, &device_id, action)?;
    match out {
        DataOut::Enrolment(info) => {
            let status = match state.service.enrol(id, info).await? {
                EnrolOutcome::AlreadyApproved => ALREADY_REPORTED,
                EnrolOutcome::Created(_) | EnrolOutcome::StillPending => StatusCode::OK,
            };
            Ok(status.into_response())
        }
        DataOut::Registration(info) => {
            let (certificate, frame_keys) = state.service.register(id, identity, info).await?;
            let response = MessageResponse {
                message_id: msg.message_id,
                directive: Some(directive::REGISTRATION.into()),
                content: Some(json!(RegistrationResponse {
                    certificate,
                    frame_keys
                })),
                metadata: None,
            };
            Ok(Json(response).into_response())
        }
        DataOut::Heartbeat(info, raw) => {
            state.service.heartbeat(id, info, raw, msg.sent).await?;
            Ok(StatusCode::OK.into_response())
        }
    }
}

/// `GET data/{id}/in`: the device's configuration.
pub(super) async fn get_data(
    State(state): State<AppState>,
    Peer(identity): Peer,
    Path(device_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = authorized_device(&state, &identity, &device_id, Action::GetConfiguration)?;
    let (_version, content) = state.service.configuration(id).await?;
    let msg = new_message(&state, "data", Some(directive::DEVICE), content);
    Ok(Json(msg).into_response())
}
