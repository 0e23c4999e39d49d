//! Link addresses of devices on the admin listener (`bind`/`unbind`):
//!
//! - `GET /apis/devices/{id}/links`: `{"items": [{kind, address, boundAt}]}`;
//! - `POST /apis/devices/{id}/links/{kind}/{address}`: bind (200, outcome
//!   `bound` or `unchanged`; 404 no such live device; 409 the address is
//!   another device's; 400 an invalid kind or address);
//! - `DELETE /apis/devices/{id}/links/{kind}/{address}`: unbind (404 when
//!   the device does not have it).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::device_id::DeviceId;
use crate::links::{LinkAddress, LinkKind};
use crate::store::StoreError;

type Failure = (StatusCode, Json<Value>);

fn fail(status: StatusCode, message: impl ToString) -> Failure {
    (status, Json(json!({"message": message.to_string()})))
}

fn store_failure(e: StoreError) -> Failure {
    match e {
        StoreError::DeviceNotFound(_) => fail(StatusCode::NOT_FOUND, e),
        StoreError::AddressBound { .. } => fail(StatusCode::CONFLICT, e),
        e if e.is_retriable() => fail(StatusCode::SERVICE_UNAVAILABLE, e),
        e => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn parse(id: &str, kind: &str, address: &str) -> Result<(DeviceId, LinkAddress), Failure> {
    let id = DeviceId::parse(id).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let kind: LinkKind = kind.parse().map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let address =
        LinkAddress::parse(kind, address).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    Ok((id, address))
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn crate::store::Store, u64) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Failure> {
    let store = state.service.store().clone();
    let now_ms = state.service.clock().now_ms();
    tokio::task::spawn_blocking(move || f(&*store, now_ms))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(store_failure)
}

/// `POST /apis/devices/{id}/links/{kind}/{address}`.
pub(super) async fn bind(
    State(state): State<AppState>,
    Path((id, kind, address)): Path<(String, String, String)>,
) -> Result<Json<Value>, Failure> {
    let (id, address) = parse(&id, &kind, &address)?;
    let shown = (id.to_string(), address.clone());
    let new = blocking(&state, move |s, now| s.bind_link(&address, &id, now)).await?;
    let (id, address) = shown;
    tracing::info!(device = %id, %address, new, "link address bound");
    let outcome = if new { "bound" } else { "unchanged" };
    Ok(Json(json!({
        "device": id, "kind": address.kind().as_str(), "address": address.address(),
        "outcome": outcome,
    })))
}

/// `DELETE /apis/devices/{id}/links/{kind}/{address}`.
pub(super) async fn unbind(
    State(state): State<AppState>,
    Path((id, kind, address)): Path<(String, String, String)>,
) -> Result<Json<Value>, Failure> {
    let (id, address) = parse(&id, &kind, &address)?;
    let (shown_id, shown) = (id.clone(), address.clone());
    // Only the device's own binding goes: never another device's.
    blocking(&state, move |s, _| match s.linked_device(&address)? {
        Some(holder) if holder == id => s.unbind_link(&address).map(|_| ()),
        Some(holder) => Err(StoreError::AddressBound {
            address: address.to_string(),
            device: holder.to_string(),
        }),
        None => Err(StoreError::DeviceNotFound(format!("{id} with {address}"))),
    })
    .await?;
    tracing::info!(device = %shown_id, address = %shown, "link address unbound");
    Ok(Json(json!({
        "device": shown_id.to_string(), "kind": shown.kind().as_str(),
        "address": shown.address(), "outcome": "unbound",
    })))
}

/// `GET /apis/devices/{id}/links`.
pub(super) async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let id = DeviceId::parse(&id).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let links = blocking(&state, move |s, _| {
        if s.device(&id)?.is_none() {
            return Err(StoreError::DeviceNotFound(id.to_string()));
        }
        s.device_links(&id)
    })
    .await?;
    let items: Vec<Value> = links
        .iter()
        .map(|l| {
            json!({
                "kind": l.address.kind().as_str(),
                "address": l.address.address(),
                "boundAtMs": l.bound_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
