//! The operator console: HTML pages served by the admin listener under
//! `/ui/`, rendered on the server with `maud` (escaped by construction),
//! one stylesheet and one small script compiled in (`assets`). Pages read
//! without JavaScript; the script only adds live events (SSE from
//! `/apis/events/stream`). Access is the admin listener's (`admin_auth`):
//! a browser signs in with a bearer token kept in a cookie (`login`), or
//! presents an admin client certificate; the read-only role sees
//! everything and changes nothing.
//!
//! - [`fleet`]: counts, filters, sort and paging over every device;
//! - [`device`]: one device (identity, certificate, hardware, link,
//!   [`charts`] of its [`history`], events, logs, workloads);
//! - [`approvals`]: pending enrolments and the Approve action;
//! - [`workloads`]: where each EdgeWorkload runs and its state;
//! - [`audit`]: the audit log (admin role).

pub mod approvals;
pub mod assets;
pub mod audit;
pub mod charts;
pub mod device;
pub mod fleet;
pub mod history;
pub mod layout;
pub mod login;
pub mod workloads;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use crate::api::AppState;
use crate::objects::ObjectSource;
use crate::store::{Store, StoreError};

/// The console's routes (under the admin listener's guard).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(fleet::fleet))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/logout", post(login::sign_out))
        .route("/ui/static/{file}", get(assets::asset))
        .route("/ui/approvals", get(approvals::approvals))
        .route("/ui/workloads", get(workloads::workloads))
        .route("/ui/audit", get(audit::audit))
        .route("/ui/devices/{id}", get(device::device))
        .route("/ui/devices/{id}/approve", post(approvals::approve))
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request names something malformed.
    #[error("{0}")]
    BadRequest(String),
    /// It names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The blocking task failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl ConsoleError {
    /// Whether reloading may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            ConsoleError::Store(e) => e.is_retriable(),
            ConsoleError::Internal(_) => true,
            _ => false,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            e if e.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = layout::page(
            status.canonical_reason().unwrap_or("Error"),
            None,
            layout::Nav::Fleet,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p #error { (self.to_string()) }
                p { a href="/ui/" { "Back to the fleet" } }
            },
        );
        (status, body).into_response()
    }
}

/// Run `f` on the blocking pool with the store, the object source and the
/// server's time.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store, &dyn ObjectSource, u64) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ConsoleError> {
    let store = state.service.store().clone();
    let objects = state.service.objects().clone();
    let now = state.service.clock().now_ms();
    tokio::task::spawn_blocking(move || f(&*store, &*objects, now))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?
        .map_err(ConsoleError::from)
}
