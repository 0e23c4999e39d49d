//! The server's requests to the Kubernetes API outside the watches: create,
//! merge patch, status by server-side apply, delete, get. Each is checked
//! against [`super::access::ACCESS`] (what the deployment's RBAC grants)
//! before it is sent, has a deadline (`kubernetes_request_timeout_seconds`), is counted in
//! `flotta_kubernetes_requests_total`, and puts what the API server
//! answered into the kind's mirror, so the next read sees it.

use std::future::Future;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::Shared;
use super::access::{self, Verb};
use super::wire::{deleting, finalizers, kept, resource_version};
use crate::objects::Kind;
use crate::store::StoreError;

/// The field manager of the server's status writes (server-side apply).
const FIELD_MANAGER: &str = "flotta-server";

/// How a request ended, for the metric and the caller.
enum Failure {
    NotFound,
    Other(StoreError),
}

impl Shared {
    /// The API of `kind` in `namespace`, for a request that `verb`s it (its
    /// status subresource when `status`); refused when [`access::ACCESS`]
    /// does not grant it.
    fn api(
        &self,
        kind: Kind,
        namespace: &str,
        verb: Verb,
        status: bool,
    ) -> Result<Api<DynamicObject>, StoreError> {
        if !access::permits(kind, status, verb) {
            return Err(StoreError::Kubernetes {
                message: format!(
                    "flotta-server does not {} {} in a cluster (see cluster/access.rs){}",
                    verb.as_str(),
                    access::resource(kind, status),
                    if access::group(kind).is_empty() {
                        ": manage them with kubectl"
                    } else {
                        ""
                    }
                ),
                retriable: false,
            });
        }
        let resource = self
            .resources
            .get(&kind)
            .ok_or_else(|| StoreError::Kubernetes {
                message: format!(
                    "the cluster serves no {kind} (see the server's start-up warning)"
                ),
                retriable: false,
            })?;
        Ok(Api::namespaced_with(
            self.client.clone(),
            namespace,
            resource,
        ))
    }

    async fn call<T>(
        &self,
        verb: &str,
        what: &str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Failure> {
        let outcome = tokio::time::timeout(self.request_timeout, request).await;
        let (result, failure) = match outcome {
            Ok(Ok(v)) => {
                self.metrics.count_kube(verb, "ok");
                return Ok(v);
            }
            Err(_) => (
                "retry",
                Failure::Other(StoreError::Kubernetes {
                    message: format!("{verb} {what}: no answer within {:?}", self.request_timeout),
                    retriable: true,
                }),
            ),
            Ok(Err(kube::Error::Api(status))) => {
                let message = format!("{verb} {what}: {} ({})", status.message, status.code);
                match status.code {
                    404 => ("not_found", Failure::NotFound),
                    409 => ("conflict", Failure::Other(StoreError::Conflict(message))),
                    429 | 500..=599 => (
                        "retry",
                        Failure::Other(StoreError::Kubernetes {
                            message,
                            retriable: true,
                        }),
                    ),
                    _ => (
                        "refused",
                        Failure::Other(StoreError::Kubernetes {
                            message,
                            retriable: false,
                        }),
                    ),
                }
            }
            Ok(Err(e)) => (
                "retry",
                Failure::Other(StoreError::Kubernetes {
                    message: format!("{verb} {what}: {e}"),
                    retriable: true,
                }),
            ),
        };
        self.metrics.count_kube(verb, result);
        Err(failure)
    }

    /// Put an answer into the mirror: an object being deleted that no
    /// finalizer holds any more is gone.
    fn record(&self, kind: Kind, object: &DynamicObject) -> Value {
        let body = kept(serde_json::to_value(object).unwrap_or(Value::Null));
        if let Some(mirror) = self.mirrors.get(&kind) {
            if deleting(&body) && finalizers(&body).is_empty() {
                let meta = |k: &str| {
                    body.pointer(&format!("/metadata/{k}"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                mirror.record_deleted(meta("namespace"), meta("name"), resource_version(&body));
            } else {
                mirror.record(body.clone());
            }
        }
        body
    }

    /// Create `body` (already [`super::wire::sendable`]); `Conflict` when it
    /// exists.
    pub(super) async fn create(&self, kind: Kind, body: &Value) -> Result<Value, StoreError> {
        let ns = body
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let what = format!("{kind} {ns}/{name}");
        let object: DynamicObject = serde_json::from_value(body.clone())?;
        let api = self.api(kind, ns, Verb::Create, false)?;
        match self
            .call("create", &what, api.create(&PostParams::default(), &object))
            .await
        {
            Ok(created) => Ok(self.record(kind, &created)),
            Err(Failure::NotFound) => Err(StoreError::Kubernetes {
                message: format!("create {what}: not found (is the CRD installed?)"),
                retriable: false,
            }),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Merge-patch (RFC 7386) an object; `None` when it is gone.
    pub(super) async fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Option<Value>, StoreError> {
        let what = format!("{kind} {namespace}/{name}");
        let api = self.api(kind, namespace, Verb::Patch, false)?;
        let params = PatchParams::default();
        match self
            .call(
                "patch",
                &what,
                api.patch(name, &params, &Patch::Merge(patch)),
            )
            .await
        {
            Ok(patched) => Ok(Some(self.record(kind, &patched))),
            Err(Failure::NotFound) => Ok(None),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Write an object's status through the status subresource with
    /// server-side apply (field manager `flotta-server`, forced: the status
    /// is the server's); `None` when the object is gone.
    pub(super) async fn apply_status(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<Option<Value>, StoreError> {
        let what = format!("{kind} {namespace}/{name}");
        let api = self.api(kind, namespace, Verb::Patch, true)?;
        let body = json!({
            "apiVersion": kind.api_version(),
            "kind": kind.as_str(),
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match self
            .call(
                "status",
                &what,
                api.patch_status(name, &params, &Patch::Apply(&body)),
            )
            .await
        {
            Ok(written) => Ok(Some(self.record(kind, &written))),
            Err(Failure::NotFound) => Ok(None),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Delete an object; returns whether it existed. An object that other
    /// finalizers still hold stays, marked for deletion, in the mirror.
    pub(super) async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        last_seen: &Value,
    ) -> Result<bool, StoreError> {
        let what = format!("{kind} {namespace}/{name}");
        let api = self.api(kind, namespace, Verb::Delete, false)?;
        match self
            .call("delete", &what, api.delete(name, &DeleteParams::default()))
            .await
        {
            Ok(either) => {
                match either.left() {
                    Some(still_there) => {
                        self.record(kind, &still_there);
                    }
                    None => {
                        if let Some(mirror) = self.mirrors.get(&kind) {
                            mirror.record_deleted(namespace, name, resource_version(last_seen));
                        }
                    }
                }
                Ok(true)
            }
            Err(Failure::NotFound) => {
                if let Some(mirror) = self.mirrors.get(&kind) {
                    mirror.record_deleted(namespace, name, resource_version(last_seen));
                }
                Ok(false)
            }
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Read an object from the API server (not the mirror), and put it into
    /// the mirror.
    pub(super) async fn fetch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, StoreError> {
        let what = format!("{kind} {namespace}/{name}");
        let api = self.api(kind, namespace, Verb::Get, false)?;
        match self.call("get", &what, api.get(name)).await {
            Ok(found) => Ok(Some(self.record(kind, &found))),
            Err(Failure::NotFound) => Ok(None),
            Err(Failure::Other(e)) => Err(e),
        }
    }
}
