//! The audit page (`GET /ui/audit`, admin role): who changed what and when,
//! newest first, 100 records a page (`?before=ID` for older ones).

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, page, time};
use super::{ConsoleError, blocking};
use crate::admin_auth::Principal;
use crate::api::AppState;

const PER_PAGE: usize = 100;

/// `?before=ID`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    before: Option<u64>,
}

/// `GET /ui/audit`.
pub async fn audit(
    State(state): State<AppState>,
    Extension(viewer): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> Result<Markup, ConsoleError> {
    let records = blocking(&state, move |store, _, _| {
        store.audit_log(q.before, PER_PAGE)
    })
    .await?;
    let body = html! {
        h1 { "Audit" }
        @if records.is_empty() { p.muted { "No audited change." } }
        @else {
            table #audit {
                thead { tr { th { "Time" } th { "Who" } th { "Role" } th { "How" } th { "Request" } th { "Status" } th { "Detail" } } }
                tbody {
                    @for r in &records {
                        @let e = &r.entry;
                        tr {
                            td { (time(e.at_ms)) }
                            td { (e.principal) }
                            td { (e.role) }
                            td { (e.via) }
                            td { code { (e.method) " " (e.path) } }
                            td class=[(e.status >= 400).then_some("bad")] { (e.status) }
                            td { (e.detail) }
                        }
                    }
                }
            }
            @if records.len() == PER_PAGE {
                @if let Some(last) = records.last() {
                    nav.pager { a #older href={ "/ui/audit?before=" (last.id) } { "older →" } }
                }
            }
        }
    };
    Ok(page("Audit", Some(&viewer), Nav::Audit, body))
}
