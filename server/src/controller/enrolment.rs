//! Enrolment objects: every enrolled device has an EdgeDeviceSignedRequest;
//! approval in either place (the store's approval flag, set by auto-approval
//! or `approve`, or `spec.approved` set by an operator's `apply`) is copied to
//! the other; an approved device gets its EdgeDevice, labelled with its
//! hardware.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ControllerError, rfc3339, wire};
use crate::objects::{Kind, ObjectSource};
use crate::store::{Approval, Device, Store, StoredObject};

/// Create or update the device's EdgeDeviceSignedRequest and reconcile the
/// approval both ways. Returns the device's approval afterwards.
pub fn sync_request(
    store: &dyn Store,
    objects: &dyn ObjectSource,
    device: &Device,
    now_ms: u64,
) -> Result<Approval, ControllerError> {
    let kind = Kind::EdgeDeviceSignedRequest.as_str();
    let ns = device.namespace.as_str();
    let name = device.id.as_str();
    let existing = objects.get(kind, ns, name)?;
    let approved_in_object = existing
        .as_ref()
        .and_then(|o| o.body.pointer("/spec/approved"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut approval = device.approval;
    if approved_in_object && approval == Approval::Pending {
        store.approve(&device.id)?;
        approval = Approval::Approved;
    }
    let approved = approval == Approval::Approved;
    let mut body = match existing.as_ref() {
        Some(o) => o.body.clone(),
        None => {
            let mut features = json!({});
            if let Some(hw) = device.hardware.as_ref().and_then(wire::hardware_to_crd) {
                features["hardware"] = serde_json::to_value(hw).unwrap_or(Value::Null);
            }
            json!({
                "apiVersion": flotta_crd::API_VERSION,
                "kind": kind,
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "creationTimestamp": rfc3339(device.enrolled_at_ms),
                    "uid": uuid::Uuid::new_v4().to_string(),
                },
                "spec": {"targetNamespace": ns, "approved": false, "features": features},
            })
        }
    };
    let before = body.clone();
    body["spec"]["approved"] = Value::Bool(approved);
    if existing.is_none() || body != before {
        objects.put(&StoredObject {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            body: body.clone(),
        })?;
    }
    // Flotta's request status is its conditions only (a `phase` would be
    // pruned, or refused by server-side apply, by a real API server).
    let condition = if approved { "approved" } else { "pending" };
    if body
        .pointer("/status/conditions/0/type")
        .and_then(Value::as_str)
        != Some(condition)
    {
        let status = json!({
            "conditions": [{
                "type": condition,
                "status": "True",
                "lastTransitionTime": rfc3339(now_ms),
                "message": if approved { "device approved" } else { "waiting for approval" },
            }],
        });
        objects.put_status(kind, ns, name, &status)?;
    }
    Ok(approval)
}

/// The set an approved request asks the device to join (`spec.targetSet`).
fn target_set(
    objects: &dyn ObjectSource,
    device: &Device,
) -> Result<Option<String>, ControllerError> {
    let request = objects.get(
        Kind::EdgeDeviceSignedRequest.as_str(),
        device.namespace.as_str(),
        device.id.as_str(),
    )?;
    Ok(request
        .and_then(|o| o.body.pointer("/spec/targetSet").cloned())
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty()))
}

/// Create the approved device's EdgeDevice if missing; set its labels to the
/// operator's labels plus hardware labels (which always reflect the latest
/// report), the signed-request marker and the requested set. The store's
/// labels follow. Returns the EdgeDevice and its labels.
pub fn sync_device_object(
    store: &dyn Store,
    objects: &dyn ObjectSource,
    device: &Device,
    now_ms: u64,
) -> Result<(StoredObject, BTreeMap<String, String>), ControllerError> {
    let kind = Kind::EdgeDevice.as_str();
    let (ns, name) = (device.namespace.as_str(), device.id.as_str());
    let existing = objects.get(kind, ns, name)?;
    let mut body = match &existing {
        Some(o) => o.body.clone(),
        None => json!({
            "apiVersion": flotta_crd::API_VERSION,
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": ns,
                "creationTimestamp": rfc3339(now_ms),
                "uid": uuid::Uuid::new_v4().to_string(),
            },
            "spec": {"requestTime": rfc3339(device.enrolled_at_ms)},
        }),
    };
    let mut labels: BTreeMap<String, String> = body
        .pointer("/metadata/labels")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if let Some(hw) = device.hardware.as_ref().and_then(wire::hardware_to_crd) {
        labels.extend(flotta_crd::labels::hardware_labels(&hw));
    }
    labels.insert(flotta_crd::labels::SIGNED_REQUEST.into(), "true".into());
    if existing.is_none()
        && let Some(set) = target_set(objects, device)?
    {
        labels.insert(flotta_crd::labels::MEMBER_OF.into(), set);
    }
    let before = body.clone();
    body["metadata"]["labels"] = serde_json::to_value(&labels).unwrap_or(Value::Null);
    let object = StoredObject {
        kind: kind.into(),
        namespace: ns.into(),
        name: name.into(),
        body,
    };
    if existing.is_none() || object.body != before {
        objects.put(&object)?;
    }
    if device.labels != labels {
        store.set_labels(&device.id, &labels)?;
    }
    Ok((object, labels))
}
