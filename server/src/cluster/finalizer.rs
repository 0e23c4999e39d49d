//! EdgeDevices deleted in the cluster: `kubectl delete edgedevice X` of an
//! enrolled device decommissions it (its certificates are refused from then
//! on, as `flotta-server decommission` does), then the server's finalizer
//! comes off and the object goes. The finalizer makes this hold across
//! restarts and lost watch events: an EdgeDevice marked for deletion waits
//! for the server however long it was away.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Shared;
use super::wire::{FINALIZER, deleting, finalizers};
use crate::device_id::DeviceId;
use crate::objects::Kind;
use crate::service::{EdgeService, ServiceError};
use crate::store::StoreError;

/// Who decommissioned a device whose EdgeDevice was deleted.
pub const ACTOR: &str = "kubernetes (EdgeDevice deleted)";

/// The EdgeDevices marked for deletion that still carry the finalizer.
fn held(shared: &Shared) -> Vec<Value> {
    shared
        .mirrors
        .get(&Kind::EdgeDevice)
        .map(|m| m.list(None))
        .unwrap_or_default()
        .into_iter()
        .filter(|b| deleting(b) && finalizers(b).iter().any(|f| f == FINALIZER))
        .collect()
}

/// Decommission the device of every EdgeDevice marked for deletion, then
/// release it. Returns how many were released; a failure leaves the
/// finalizer for the next round.
pub(super) async fn release_deleted(shared: &Arc<Shared>, service: &EdgeService) -> usize {
    let mut released = 0;
    for body in held(shared) {
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ns = body
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match release(shared, service, ns, name, &body).await {
            Ok(()) => released += 1,
            Err(e) => tracing::warn!(
                "EdgeDevice {ns}/{name} deleted; its device is not released yet: {e}"
            ),
        }
    }
    released
}

#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn release(
    shared: &Arc<Shared>,
    service: &EdgeService,
    ns: &str,
    name: &str,
    body: &Value,
) -> Result<(), ReleaseError> {
    if let Ok(id) = DeviceId::parse(name) {
        let store = service.store().clone();
        let lookup = id.clone();
        let device = tokio::task::spawn_blocking(move || store.device(&lookup))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if device.is_some_and(|d| d.namespace.as_str() == ns && d.decommissioned.is_none()) {
            service.decommission(id, ACTOR.to_owned(), false).await?;
        }
    }
    let rest: Vec<String> = finalizers(body)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    shared
        .patch(
            Kind::EdgeDevice,
            ns,
            name,
            &json!({"metadata": {"finalizers": rest}}),
        )
        .await?;
    Ok(())
}
