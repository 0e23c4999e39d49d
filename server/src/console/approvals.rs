//! The approvals page (`GET /ui/approvals`): devices that enrolled and
//! wait for an operator, with an Approve button for the admin role
//! (`POST /ui/devices/{id}/approve`, audited like every change; the
//! read-only role sees the list and no button, and is refused by the
//! guard if it posts anyway).

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{Nav, may_change, page, when};
use super::{ConsoleError, blocking};
use crate::admin_auth::Principal;
use crate::admin_auth::guard::AuditDetail;
use crate::api::AppState;
use crate::device_id::DeviceId;
use crate::store::{Approval, StoreError};

/// `GET /ui/approvals`.
pub async fn approvals(
    State(state): State<AppState>,
    Extension(viewer): Extension<Principal>,
) -> Result<Markup, ConsoleError> {
    let (pending, now) = blocking(&state, |store, _, now| {
        let pending: Vec<_> = store
            .devices()?
            .into_iter()
            .filter(|d| d.approval == Approval::Pending && d.decommissioned.is_none())
            .collect();
        Ok((pending, now))
    })
    .await?;
    let admin = may_change(&viewer);
    let body = html! {
        h1 { "Approvals" }
        @if pending.is_empty() { p.muted #no-pending { "No device is waiting for approval." } }
        @else {
            table #pending {
                thead { tr { th { "Device" } th { "Namespace" } th { "Enrolled" } th { "Hardware" } @if admin { th {} } } }
                tbody {
                    @for d in &pending {
                        tr data-device=(d.id) {
                            td { a href={ "/ui/devices/" (d.id) } { (d.id) } }
                            td { (d.namespace) }
                            td { (when(Some(d.enrolled_at_ms), now)) }
                            td { (hardware_line(d.hardware.as_ref())) }
                            @if admin {
                                td { form.inline method="post" action={ "/ui/devices/" (d.id) "/approve" } {
                                    button.approve type="submit" { "Approve" }
                                } }
                            }
                        }
                    }
                }
            }
            @if !admin { p.muted #read-only-note { "Your role is read-only: approving needs the admin role." } }
        }
    };
    Ok(page("Approvals", Some(&viewer), Nav::Approvals, body))
}

fn hardware_line(hw: Option<&Value>) -> String {
    let Some(hw) = hw else {
        return "—".into();
    };
    let pick = |p: &str| hw.pointer(p).and_then(Value::as_str).map(str::to_owned);
    [
        pick("/hostname"),
        pick("/cpu/architecture"),
        pick("/cpu/model-name"),
        pick("/system_vendor/product_name"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ")
}

/// `POST /ui/devices/{id}/approve`: approve, then back to where the form was.
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ConsoleError> {
    let id = DeviceId::parse(&id).map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
    let shown = id.to_string();
    blocking(&state, move |store, _, _| match store.approve(&id) {
        Err(StoreError::DeviceNotFound(_)) => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(true),
    })
    .await?
    .then_some(())
    .ok_or_else(|| ConsoleError::NotFound(format!("no device {shown}")))?;
    if let Err(e) = state.controller.run_now().await {
        tracing::warn!("controller pass after an approval failed: {e}");
    }
    // Back to the page the button was on (same origin only).
    let back = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/ui/").map(|i| r[i..].to_owned()))
        .unwrap_or_else(|| "/ui/approvals".into());
    let mut response = Redirect::to(&back).into_response();
    response
        .extensions_mut()
        .insert(AuditDetail(format!("approved {shown} (console)")));
    Ok(response)
}
