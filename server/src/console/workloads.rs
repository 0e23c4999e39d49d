//! The workloads page (`GET /ui/workloads`): every EdgeWorkload, the
//! devices the controller places it on (its own placement rule) and the
//! phase each reports (`assigned` until it does).

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{Nav, badge, page};
use super::{ConsoleError, blocking};
use crate::admin_auth::Principal;
use crate::api::AppState;
use crate::controller::placement;
use crate::objects::{Kind, ObjectSource};
use crate::store::StoreError;

/// One EdgeWorkload as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `device X` or `selector {...}`.
    pub target: String,
    /// Its containers' images.
    pub images: Vec<String>,
    /// Device -> phase the device reports, or `assigned` before it does.
    pub placed: BTreeMap<String, String>,
}

/// Every EdgeWorkload with the devices the controller's placement rule
/// puts it on (by name or label selector, in its namespace) and the phase
/// each reports.
pub fn load(objects: &dyn ObjectSource) -> Result<Vec<Workload>, StoreError> {
    let devices = objects.list(Kind::EdgeDevice.as_str(), None)?;
    let workloads = objects.list(Kind::EdgeWorkload.as_str(), None)?;
    let mut out = Vec::new();
    for w in &workloads {
        let spec = w.body.get("spec").cloned().unwrap_or(Value::Null);
        let target = match (
            spec.get("device").and_then(Value::as_str),
            spec.get("deviceSelector"),
        ) {
            (Some(d), _) => format!("device {d}"),
            (None, Some(sel)) => format!("selector {sel}"),
            _ => "—".into(),
        };
        let images = spec
            .pointer("/pod/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let candidates = placement::candidates(std::slice::from_ref(w), &[], &[]);
        let mut placed = BTreeMap::new();
        for d in devices.iter().filter(|d| d.namespace == w.namespace) {
            let labels: BTreeMap<String, String> = d
                .body
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            if placement::placed(&d.name, &labels, &candidates).is_empty() {
                continue;
            }
            let phase = d
                .body
                .pointer("/status/workloads")
                .and_then(Value::as_array)
                .and_then(|ws| {
                    ws.iter()
                        .find(|x| x.get("name").and_then(Value::as_str) == Some(w.name.as_str()))
                })
                .and_then(|x| x.get("phase").and_then(Value::as_str))
                .unwrap_or("assigned")
                .to_owned();
            placed.insert(d.name.clone(), phase);
        }
        out.push(Workload {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            target,
            images,
            placed,
        });
    }
    Ok(out)
}

/// `GET /ui/workloads`.
pub async fn workloads(
    State(state): State<AppState>,
    Extension(viewer): Extension<Principal>,
) -> Result<Markup, ConsoleError> {
    let list = blocking(&state, |_, objects, _| load(objects)).await?;
    let body = html! {
        h1 { "Workloads" }
        @if list.is_empty() { p.muted { "No EdgeWorkload." } }
        @for w in &list {
            section.card.wide.workload data-workload=(w.name) {
                h2 { (w.namespace) "/" (w.name) }
                p { "Placed by " (w.target) @if !w.images.is_empty() { " · " @for i in &w.images { code { (i) } " " } } }
                @if w.placed.is_empty() { p.muted { "placed on no device" } }
                @else {
                    table { thead { tr { th { "Device" } th { "State" } } }
                        tbody { @for (d, phase) in &w.placed { tr {
                            td { a href={ "/ui/devices/" (d) } { (d) } }
                            td { (badge(phase)) }
                        } } }
                    }
                }
            }
        }
    };
    Ok(page("Workloads", Some(&viewer), Nav::Workloads, body))
}
