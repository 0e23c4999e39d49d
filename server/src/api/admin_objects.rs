//! The admin object API on the loopback admin listener, used by the
//! kubectl-style CLI: apply manifests, get, delete (of an EdgeDevice:
//! decommissioning, see `admin_lifecycle`), approve. Answers JSON;
//! errors are `{"message": ...}` with 400 (bad input), 404 (no such object)
//! or 500/503. Apply takes `?fieldValidation=` and answers `Warning`
//! headers as the Kubernetes API server does.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::read_limited;
use super::{AppState, admin_lifecycle};
use crate::admin_auth::Principal;
use crate::admin_auth::guard::AuditDetail;
use crate::controller::{self, status};
use crate::device_id::DeviceId;
use crate::objects::{self, FieldValidation, Kind, ObjectError, ObjectSource, UnknownFields};
use crate::store::{Store, StoreError};

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn error(status: StatusCode, message: impl ToString) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"message": message.to_string()})))
}

fn object_error(e: ObjectError) -> (StatusCode, Json<Value>) {
    let status = match &e {
        ObjectError::Store(s) if s.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
        ObjectError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e)
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store, &dyn ObjectSource, u64) -> Result<T, ObjectError> + Send + 'static,
) -> Result<T, (StatusCode, Json<Value>)> {
    let store = state.service.store().clone();
    let objects = state.service.objects().clone();
    let now = state.service.clock().now_ms();
    tokio::task::spawn_blocking(move || f(&*store, &*objects, now))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(object_error)
}

async fn run_controller(state: &AppState) {
    if let Err(e) = state.controller.run_now().await {
        tracing::warn!("controller pass after an admin write failed: {e}");
    }
}

/// `?namespace=` of admin requests.
#[derive(Debug, Deserialize)]
pub(super) struct NamespaceQuery {
    namespace: Option<String>,
}

/// `?namespace=&fieldValidation=` of `POST /apis/apply`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ApplyQuery {
    namespace: Option<String>,
    field_validation: Option<String>,
}

/// One applied object's unknown fields, in kube's words.
struct Noted {
    label: String,
    warnings: Vec<String>,
}

/// `POST /apis/apply`: YAML or JSON manifests, one or more documents (at
/// most `max_admin_body_bytes`). Every document is validated before
/// anything is stored. Unknown fields are dropped; with
/// `fieldValidation=Warn` (the default) each is named in a `Warning`
/// header and in the object's `warnings`, with `Strict` the request is
/// refused (400) naming them all, with `Ignore` nothing is said.
pub(super) async fn apply(
    State(state): State<AppState>,
    Query(q): Query<ApplyQuery>,
    body: Body,
) -> Result<(HeaderMap, Extension<AuditDetail>, Json<Value>), (StatusCode, Json<Value>)> {
    let validation = match q.field_validation.as_deref() {
        None | Some("") => FieldValidation::default(),
        Some(v) => v
            .parse::<FieldValidation>()
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?,
    };
    let body = read_limited(body, state.service.config().max_admin_body_bytes)
        .await
        .map_err(|e| error(e.status(), e.message()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("manifests must be UTF-8: {e}"),
            )
        })?
        .to_owned();
    let default_ns = q
        .namespace
        .unwrap_or_else(|| state.service.config().default_namespace.clone());
    let (results, noted) = blocking(&state, move |_, source, now| {
        let docs = objects::parse_manifests(&text)?;
        let noted = unknown_fields(&docs, &default_ns, validation)?;
        let stamp = controller::rfc3339(now);
        let results = docs
            .iter()
            .zip(&noted)
            .map(|(doc, noted)| {
                let (o, outcome) = objects::apply(source, doc, &default_ns, &stamp)?;
                let mut r = json!({"kind": o.kind, "namespace": o.namespace, "name": o.name, "outcome": outcome.as_str()});
                if !noted.warnings.is_empty() {
                    r["warnings"] = json!(noted.warnings);
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>, ObjectError>>()?;
        Ok((results, noted))
    })
    .await?;
    run_controller(&state).await;
    let detail = results
        .iter()
        .map(|r| {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            format!(
                "{} {}/{} {}",
                text("kind"),
                text("namespace"),
                text("name"),
                text("outcome")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok((
        warning_headers(&noted),
        Extension(AuditDetail(detail)),
        Json(Value::Array(results)),
    ))
}

/// Validate every document (nothing is stored when one fails) and note its
/// unknown fields as `validation` says: refused together when strict, kept
/// as warnings when warning, forgotten when ignoring.
fn unknown_fields(
    docs: &[Value],
    default_ns: &str,
    validation: FieldValidation,
) -> Result<Vec<Noted>, ObjectError> {
    let mut noted = Vec::with_capacity(docs.len());
    let mut refused = Vec::new();
    for doc in docs {
        let (o, paths) = objects::validate_noting_unknown(doc, default_ns)?;
        let label = format!("{}/{}", o.kind.to_ascii_lowercase(), o.name);
        let warnings = match validation {
            FieldValidation::Ignore => Vec::new(),
            FieldValidation::Warn => paths
                .iter()
                .map(|p| objects::unknown_field_message(p))
                .collect(),
            FieldValidation::Strict => {
                if !paths.is_empty() {
                    refused.push(UnknownFields {
                        kind: o.kind,
                        name: o.name,
                        paths,
                    });
                }
                Vec::new()
            }
        };
        noted.push(Noted { label, warnings });
    }
    if refused.is_empty() {
        Ok(noted)
    } else {
        Err(ObjectError::UnknownFields(refused))
    }
}

/// One `Warning: 299 - "..."` header per warning. A request that holds one
/// object gets exactly the API server's text; with several, each text
/// starts with the object it is about (`edgeworkload/web: unknown field ...`).
fn warning_headers(noted: &[Noted]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for n in noted {
        for w in &n.warnings {
            let text = if noted.len() == 1 {
                w.clone()
            } else {
                format!("{}: {w}", n.label)
            };
            if let Ok(v) = HeaderValue::from_str(&crate::warning::encode(&text)) {
                headers.append(header::WARNING, v);
            }
        }
    }
    headers
}

fn parse_kind(kind: &str) -> Result<Kind, (StatusCode, Json<Value>)> {
    kind.parse().map_err(object_error)
}

/// EdgeDevices get their live presence, last-seen time and link overlaid.
fn with_live_status(
    store: &dyn Store,
    state_settings: controller::Settings,
    mut body: Value,
    now: u64,
) -> Result<Value, ObjectError> {
    let Some(name) = body.pointer("/metadata/name").and_then(Value::as_str) else {
        return Ok(body);
    };
    let Ok(id) = DeviceId::parse(name) else {
        return Ok(body);
    };
    if let Some(device) = store.device(&id)? {
        let p = controller::device_presence(store, state_settings, &device, now)?;
        let status = body
            .as_object_mut()
            .map(|o| o.entry("status").or_insert(Value::Null));
        let link = store.frame_link_status(&id)?;
        let (links, sbd) = (store.device_links(&id)?, store.sbd_status(&id)?);
        let lora = store.lorawan_status(&id)?;
        if let Some(status) = status {
            status::overlay_live(status, &device, p);
            status::overlay_link(status, &link);
            status::overlay_sbd(status, &links, sbd.as_ref());
            status::overlay_lorawan(status, &links, lora.as_ref());
        }
    }
    Ok(body)
}

/// `GET /apis/{kind}`: all objects of a kind (in `?namespace=`, or all).
pub(super) async fn list(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Query(q): Query<NamespaceQuery>,
) -> Reply {
    let kind = parse_kind(&kind)?;
    let settings = state.service.config().controller_settings();
    let items = blocking(&state, move |store, source, now| {
        source
            .list(kind.as_str(), q.namespace.as_deref())?
            .into_iter()
            .map(|o| match kind {
                Kind::EdgeDevice => with_live_status(store, settings, o.body, now),
                _ => Ok(o.body),
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(Json(json!({"kind": format!("{kind}List"), "items": items})))
}

/// `GET /apis/{kind}/{namespace}/{name}`.
pub(super) async fn get(
    State(state): State<AppState>,
    Path((kind, ns, name)): Path<(String, String, String)>,
) -> Reply {
    let kind = parse_kind(&kind)?;
    let settings = state.service.config().controller_settings();
    let found = blocking(&state, move |store, source, now| {
        match source.get(kind.as_str(), &ns, &name)? {
            Some(o) if kind == Kind::EdgeDevice => {
                Ok(Some(with_live_status(store, settings, o.body, now)?))
            }
            other => Ok(other.map(|o| o.body)),
        }
    })
    .await?;
    found
        .map(Json)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("{kind} not found")))
}

/// `DELETE /apis/{kind}/{namespace}/{name}`. Deleting the EdgeDevice of an
/// enrolled device decommissions the device (`?actor=&purge=` as for
/// `POST /apis/devices/{id}/decommission`).
pub(super) async fn delete(
    State(state): State<AppState>,
    Path((kind, ns, name)): Path<(String, String, String)>,
    Query(q): Query<admin_lifecycle::DecommissionQuery>,
    principal: Option<Extension<Principal>>,
) -> Reply {
    let kind = parse_kind(&kind)?;
    if kind == Kind::EdgeDevice
        && let Ok(id) = DeviceId::parse(&name)
    {
        let (id2, ns2) = (id.clone(), ns.clone());
        let enrolled = blocking(&state, move |store, _, _| {
            Ok(store
                .device(&id2)?
                .is_some_and(|d| d.namespace.as_str() == ns2 && d.decommissioned.is_none()))
        })
        .await?;
        if enrolled {
            let actor = admin_lifecycle::actor(principal.as_deref(), q.actor)?;
            return admin_lifecycle::run(&state, id, actor, q.purge).await;
        }
    }
    let (n2, ns2) = (name.clone(), ns.clone());
    let existed = blocking(&state, move |_, source, _| {
        Ok(source.delete(kind.as_str(), &ns2, &n2)?)
    })
    .await?;
    if !existed {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("{kind} {ns}/{name} not found"),
        ));
    }
    run_controller(&state).await;
    Ok(Json(
        json!({"kind": kind.as_str(), "namespace": ns, "name": name, "outcome": "deleted"}),
    ))
}

/// `POST /apis/devices/{id}/approve`.
pub(super) async fn approve(State(state): State<AppState>, Path(id): Path<String>) -> Reply {
    let id = DeviceId::parse(&id).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let shown = id.to_string();
    let store = state.service.store().clone();
    tokio::task::spawn_blocking(move || store.approve(&id))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(|e| match e {
            StoreError::DeviceNotFound(_) => error(StatusCode::NOT_FOUND, e),
            other => object_error(ObjectError::Store(other)),
        })?;
    run_controller(&state).await;
    Ok(Json(json!({"device": shown, "outcome": "approved"})))
}

/// `GET /metrics`: Prometheus text exposition.
pub(super) async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.service.metrics().encode(),
    )
}
