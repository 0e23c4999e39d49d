//! `apply`: parse multi-document YAML manifests and create or update objects,
//! keeping what the server owns (status, uid, creation time).

use serde::Deserialize;
use serde_json::Value;

use super::{ObjectError, ObjectSource, validate};
use crate::store::StoredObject;

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and is the same.
    Unchanged,
}

impl ApplyOutcome {
    /// kubectl's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Configured => "configured",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

/// Parse YAML (or JSON) text holding one or more `---`-separated documents.
/// Empty documents are skipped; a document that is not a mapping is an error.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, ObjectError> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = Value::deserialize(doc).map_err(|e| ObjectError::Parse {
            index,
            reason: e.to_string(),
        })?;
        match value {
            Value::Null => {}
            // `get -o yaml` prints several objects as a List: apply its items.
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                match m.get("items") {
                    Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                    _ => {
                        return Err(ObjectError::Parse {
                            index,
                            reason: "a List needs an items array".into(),
                        });
                    }
                }
            }
            Value::Object(_) => out.push(value),
            _ => {
                return Err(ObjectError::Parse {
                    index,
                    reason: "a manifest must be a mapping (apiVersion, kind, metadata, spec)"
                        .into(),
                });
            }
        }
    }
    Ok(out)
}

/// Validate and store one object. On update, the stored `status`,
/// `metadata.uid` and `metadata.creationTimestamp` are kept (status belongs
/// to the controller, as with a Kubernetes status subresource); on create a
/// manifest's status is dropped, then a uid and creation time are set.
pub fn apply(
    objects: &dyn ObjectSource,
    body: &Value,
    default_namespace: &str,
    now_rfc3339: &str,
) -> Result<(StoredObject, ApplyOutcome), ObjectError> {
    let mut object = validate(body, default_namespace)?;
    let existing = objects.get(&object.kind, &object.namespace, &object.name)?;
    let obj = object
        .body
        .as_object_mut()
        .ok_or_else(|| ObjectError::Parse {
            index: 1,
            reason: "not a mapping".into(),
        })?;
    obj.remove("status");
    let old_meta = existing.as_ref().and_then(|e| e.body.get("metadata"));
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(meta) = meta.as_object_mut() {
        for (key, fresh) in [
            ("uid", Value::from(uuid::Uuid::new_v4().to_string())),
            ("creationTimestamp", Value::from(now_rfc3339)),
        ] {
            let kept = old_meta.and_then(|m| m.get(key)).cloned();
            meta.insert(key.into(), kept.unwrap_or(fresh));
        }
    }
    if let Some(status) = existing.as_ref().and_then(|e| e.body.get("status")) {
        obj.insert("status".into(), status.clone());
    }
    let outcome = match &existing {
        None => ApplyOutcome::Created,
        Some(e) if e.body == object.body => ApplyOutcome::Unchanged,
        Some(_) => ApplyOutcome::Configured,
    };
    if outcome != ApplyOutcome::Unchanged {
        objects.put(&object)?;
    }
    Ok((object, outcome))
}
