//! The HTTP layer: routes, authorisation, error mapping.

pub mod admin;
mod admin_audit;
mod admin_events;
mod admin_feed;
mod admin_lifecycle;
mod admin_links;
mod admin_logs;
mod admin_objects;
pub mod admin_stream;
pub mod auth;
mod batch;
pub(crate) mod body;
mod control;
mod cursor;
mod error;
mod flotta;
mod link_usage;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use flotta_proto::batch::API_BASE;

pub use error::ApiError;

use crate::controller::runner::Runner;
use crate::device_id::DeviceId;
use crate::metrics::RequestLabels;
use crate::pki::ClientIdentity;
use crate::service::EdgeService;

/// State shared by all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The device-facing operations.
    pub service: EdgeService,
    /// Runs controller passes (after admin writes).
    pub controller: Runner,
    /// The admin listener's open event and log streams (bounded; ended on
    /// shutdown).
    pub streams: admin_stream::Streams,
    /// The console's fleet rows, kept a few seconds for paging and sorting.
    pub fleet_cache: std::sync::Arc<crate::console::fleet::FleetCache>,
}

/// The verified client certificate's identity, put into every request's
/// extensions by the connection handler, and judged again on every request
/// ([`EdgeService::authenticate`]): a superseded or revoked device
/// certificate is refused (401) even on a connection opened, or a TLS
/// session resumed, while it was still good.
#[derive(Debug, Clone)]
pub struct Peer(pub ClientIdentity);

impl FromRequestParts<AppState> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let identity = parts
            .extensions
            .get::<ClientIdentity>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "no client certificate"))?;
        state.service.authenticate(&identity).await?;
        Ok(Peer(identity))
    }
}

/// The preamble of every device route: `identity` may do `action` on the
/// device named in the path (now), and that name is a valid device id.
fn authorized_device(
    state: &AppState,
    identity: &ClientIdentity,
    path_id: &str,
    action: auth::Action,
) -> Result<DeviceId, ApiError> {
    auth::authorize(identity, path_id, action, state.service.clock().now())?;
    parse_device_id(path_id)
}

fn parse_device_id(s: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(s).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// Routes of the mTLS API listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            &format!("{API_BASE}/data/{{device_id}}/in"),
            get(flotta::get_data),
        )
        .route(
            &format!("{API_BASE}/data/{{device_id}}/out"),
            post(flotta::post_data),
        )
        .route(
            &format!("{API_BASE}/control/{{device_id}}/in"),
            get(control::get_control),
        )
        .route(
            &format!("{API_BASE}/control/{{device_id}}/out"),
            post(control::post_control),
        )
        .route(
            &format!("{API_BASE}/batch/{{device_id}}"),
            post(batch::post_batch),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            link_usage::count_link,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Count every API request by matched route and status.
async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    state
        .service
        .metrics()
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
