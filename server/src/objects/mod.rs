//! Flotta CRD objects (EdgeDevice, EdgeDeviceSet, EdgeWorkload,
//! EdgeDeviceSignedRequest) and the core v1 ConfigMaps and Secrets
//! workloads reference, kept as JSON in the store's generic object table,
//! validated against the `flotta-crd` types on every write.
//!
//! The store is keyed by (kind, namespace, name); the stored JSON is the
//! typed object serialised back, so what is stored always fits the schema.

mod apply;
pub mod core_v1;
mod kind;
mod source;
mod unknown;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use apply::{ApplyOutcome, apply, parse_manifests};
pub use kind::Kind;
pub use source::{ObjectChanges, ObjectSource, StoreObjects};
pub use unknown::{
    FieldValidation, FieldValidationError, deserialize_noting_unknown, unknown_field_message,
};

use crate::device_id::Namespace;
use crate::store::{StoreError, StoredObject};

/// Why an object was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A kind (or kind name on the command line) the server does not keep.
    #[error(
        "unknown kind \"{0}\": expected EdgeDevice (ed), EdgeDeviceSet (eds), EdgeWorkload (ew), EdgeDeviceSignedRequest (edsr), ConfigMap (cm) or Secret"
    )]
    UnknownKind(String),
    /// The manifest is not YAML/JSON, or not a mapping.
    #[error("document {index}: {reason}")]
    Parse {
        /// Position of the document in the input (from 1).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The object does not fit its kind's schema.
    #[error("{kind} \"{name}\": {reason}")]
    Invalid {
        /// The kind.
        kind: String,
        /// The object name (may be empty when missing).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Strict field validation refused objects with unknown fields.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    UnknownFields(Vec<UnknownFields>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The unknown fields of one object, as strict validation reports them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} \"{name}\": strict decoding error: {}", .paths.iter().map(|p| unknown_field_message(p)).collect::<Vec<_>>().join(", "))]
pub struct UnknownFields {
    /// The kind.
    pub kind: String,
    /// The object name.
    pub name: String,
    /// Every unknown field's path (`spec.foo`).
    pub paths: Vec<String>,
}

impl ObjectError {
    /// Whether the same request may succeed later without changes.
    pub fn is_retriable(&self) -> bool {
        matches!(self, ObjectError::Store(e) if e.is_retriable())
    }
}

/// The object as typed and serialised back, and the paths of the fields the
/// type dropped. `apiVersion` and `kind` (checked before) and anything under
/// `status` (apply drops status: it belongs to the controller) are not
/// reported.
fn check<T: DeserializeOwned + Serialize>(
    kind: Kind,
    name: &str,
    body: &Value,
) -> Result<(Value, Vec<String>), ObjectError> {
    let invalid = |reason: String| ObjectError::Invalid {
        kind: kind.to_string(),
        name: name.to_owned(),
        reason,
    };
    let (typed, mut unknown) = deserialize_noting_unknown::<T>(body.clone()).map_err(|e| {
        let path = e.path().to_string();
        invalid(format!("at {path}: {}", e.into_inner()))
    })?;
    unknown
        .retain(|p| p != "apiVersion" && p != "kind" && p != "status" && !p.starts_with("status."));
    let value = serde_json::to_value(&typed).map_err(|e| invalid(e.to_string()))?;
    Ok((value, unknown))
}

/// Check `body` against its kind's schema and return it as stored: the typed
/// object serialised back, with `metadata.namespace` set (`default_namespace`
/// when the manifest names none). Unknown fields are dropped silently; see
/// [`validate_noting_unknown`].
pub fn validate(body: &Value, default_namespace: &str) -> Result<StoredObject, ObjectError> {
    validate_noting_unknown(body, default_namespace).map(|(object, _)| object)
}

/// [`validate`], also returning the paths of the fields the schema does not
/// know (`spec.foo`, `spec.pod.spec.containers[0].foo`), which the stored
/// object leaves out.
pub fn validate_noting_unknown(
    body: &Value,
    default_namespace: &str,
) -> Result<(StoredObject, Vec<String>), ObjectError> {
    let kind_name = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind: Kind = if kind_name.is_empty() {
        return Err(ObjectError::UnknownKind("(missing kind)".into()));
    } else {
        kind_name.parse()?
    };
    let invalid = |reason: String| ObjectError::Invalid {
        kind: kind.to_string(),
        name: name.clone(),
        reason,
    };
    if kind_name != kind.as_str() {
        return Err(invalid(format!("kind must be spelt \"{}\"", kind.as_str())));
    }
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    if api_version != Some(kind.api_version()) {
        let found = api_version.map_or_else(|| "missing".to_owned(), |v| format!("\"{v}\""));
        return Err(invalid(format!(
            "apiVersion must be \"{}\", not {found}",
            kind.api_version()
        )));
    }
    if name.is_empty() {
        return Err(invalid("metadata.name is missing".into()));
    }
    check_name(&name).map_err(invalid)?;
    let namespace = body
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(default_namespace)
        .to_owned();
    Namespace::parse(&namespace).map_err(|e| invalid(e.to_string()))?;
    let mut body = body.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::from(namespace.as_str()));
    }
    let (body, unknown) = match kind {
        Kind::EdgeDevice => check::<flotta_crd::EdgeDevice>(kind, &name, &body)?,
        Kind::EdgeDeviceSet => check::<flotta_crd::EdgeDeviceSet>(kind, &name, &body)?,
        Kind::EdgeWorkload => {
            let checked = check::<flotta_crd::EdgeWorkload>(kind, &name, &body)?;
            check_workload(&checked.0).map_err(invalid)?;
            checked
        }
        Kind::EdgeDeviceSignedRequest => {
            check::<flotta_crd::EdgeDeviceSignedRequest>(kind, &name, &body)?
        }
        Kind::ConfigMap => core_v1::check_config_map(body).map_err(invalid)?,
        Kind::Secret => core_v1::check_secret(body).map_err(invalid)?,
    };
    let object = StoredObject {
        kind: kind.as_str().to_owned(),
        namespace,
        name,
        body,
    };
    Ok((object, unknown))
}

/// Names are DNS subdomains (RFC 1123): lower-case alphanumerics, `-` and
/// `.`, starting and ending alphanumeric, at most 253 bytes.
fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > 253
        || !name.chars().all(ok_char)
        || !alnum(name.chars().next())
        || !alnum(name.chars().last())
    {
        return Err(format!(
            "metadata.name \"{name}\" must be lower-case alphanumerics, '-' or '.', start and end alphanumeric, at most 253 bytes"
        ));
    }
    Ok(())
}

fn check_workload(v: &Value) -> Result<(), String> {
    let workload: flotta_crd::EdgeWorkload =
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    if let Some(sel) = &workload.spec.device_selector {
        flotta_crd::selector::compile_selector(sel).map_err(|e| format!("deviceSelector: {e}"))?;
    }
    if workload.spec.device.is_none() && workload.spec.device_selector.is_none() {
        return Err("spec.device or spec.deviceSelector is required".into());
    }
    if workload.spec.pod.is_none() {
        return Err("spec.pod is required".into());
    }
    Ok(())
}

/// Deserialise a stored object into its typed form.
pub fn typed<T: DeserializeOwned>(object: &StoredObject) -> Result<T, ObjectError> {
    serde_json::from_value(object.body.clone()).map_err(|e| ObjectError::Invalid {
        kind: object.kind.clone(),
        name: object.name.clone(),
        reason: format!("stored object no longer fits the schema: {e}"),
    })
}

#[cfg(test)]
mod tests;
