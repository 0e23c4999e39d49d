//! The workloads page (`GET /ui/workloads`): every EdgeWorkload, where it
//! is placed and its state on each device, from the devices' reported
//! workload phases.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{Nav, badge, page};
use super::{ConsoleError, blocking};
use crate::admin_auth::Principal;
use crate::api::AppState;
use crate::objects::Kind;

struct Workload {
    namespace: String,
    name: String,
    target: String,
    images: Vec<String>,
    /// Device -> phase.
    placed: BTreeMap<String, String>,
}

/// `GET /ui/workloads`.
pub async fn workloads(
    State(state): State<AppState>,
    Extension(viewer): Extension<Principal>,
) -> Result<Markup, ConsoleError> {
    let list = blocking(&state, |_, objects, _| {
        let mut placed: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
        for d in objects.list(Kind::EdgeDevice.as_str(), None)? {
            let ws = d
                .body
                .pointer("/status/workloads")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for w in ws {
                let name = w
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let phase = w
                    .get("phase")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned();
                placed
                    .entry((d.namespace.clone(), name))
                    .or_default()
                    .insert(d.name.clone(), phase);
            }
        }
        let mut out = Vec::new();
        for w in objects.list(Kind::EdgeWorkload.as_str(), None)? {
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
            out.push(Workload {
                placed: placed
                    .remove(&(w.namespace.clone(), w.name.clone()))
                    .unwrap_or_default(),
                namespace: w.namespace,
                name: w.name,
                target,
                images,
            });
        }
        Ok(out)
    })
    .await?;
    let body = html! {
        h1 { "Workloads" }
        @if list.is_empty() { p.muted { "No EdgeWorkload." } }
        @for w in &list {
            section.card.wide.workload data-workload=(w.name) {
                h2 { (w.namespace) "/" (w.name) }
                p { "Placed by " (w.target) @if !w.images.is_empty() { " · " @for i in &w.images { code { (i) } " " } } }
                @if w.placed.is_empty() { p.muted { "not reported by any device yet" } }
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
