//! Building Flotta's `device-configuration-message` from the stored spec.

use serde_json::{Value, json};

use super::ServiceError;
use crate::device_id::DeviceId;
use crate::store::Store;

/// Version reported for a device whose configuration was never set.
pub const DEFAULT_VERSION: &str = "0";

/// The configuration of a device nobody configured yet: heartbeats every
/// `period_seconds` (the server's `default_heartbeat_period_seconds`), no workloads.
pub fn default_spec(period_seconds: u64) -> Value {
    json!({
        "configuration": { "heartbeat": { "period_seconds": period_seconds } },
        "workloads": []
    })
}

/// The device's current `device-configuration-message` and its version;
/// [`ServiceError::NotFound`] if the device is not enrolled.
pub fn configuration_message(
    store: &dyn Store,
    id: &DeviceId,
    default_period_seconds: u64,
) -> Result<(String, Value), ServiceError> {
    if store.device(id)?.is_none() {
        return Err(ServiceError::NotFound(id.to_string()));
    }
    let (version, spec) = match store.configuration(id)? {
        Some(c) => (c.version, c.spec),
        None => (
            DEFAULT_VERSION.to_owned(),
            default_spec(default_period_seconds),
        ),
    };
    let mut message = match spec {
        Value::Object(map) => map,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("configuration".into(), other);
            m
        }
    };
    message.insert("device_id".into(), Value::from(id.as_str()));
    message.insert("version".into(), Value::from(version.as_str()));
    Ok((version, Value::Object(message)))
}
