//! Conversions between PostgreSQL rows and store types (as the SQLite
//! backend's: integers are `BIGINT`, JSON is text).

use flotta_proto::record::RecordClass;
use postgres::Row;
use serde_json::Value;

use crate::device_id::{DeviceId, Namespace};
use crate::store::{Approval, Decommissioned, Device, DeviceEvent, StoreError, StoredObject};

pub(super) fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(format!("{what} {v} exceeds 2^63-1")))
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn class_from(v: i64) -> RecordClass {
    match v {
        0 => RecordClass::Heartbeat,
        1 => RecordClass::Log,
        _ => RecordClass::Event,
    }
}

pub(super) fn json_opt(s: Option<String>) -> Result<Option<Value>, StoreError> {
    Ok(s.map(|s| serde_json::from_str(&s)).transpose()?)
}

pub(super) fn device_id(s: &str) -> Result<DeviceId, StoreError> {
    DeviceId::parse(s).map_err(|e| StoreError::OutOfRange(format!("stored device id: {e}")))
}

pub(super) const DEVICE_COLUMNS: &str = "id, namespace, approved, registered, cert_used, labels, hardware, \
     status, last_heartbeat, last_seen_ms, enrolled_at_ms, cert_serial, cert_not_after_ms, \
     decommissioned_at_ms, decommissioned_by, contact_interval_seconds";

/// A row of [`DEVICE_COLUMNS`] as a [`Device`].
pub(super) fn device_from(r: &Row) -> Result<Device, StoreError> {
    let decommissioned = match (
        r.try_get::<_, Option<i64>>(13)?,
        r.try_get::<_, Option<String>>(14)?,
    ) {
        (Some(at), by) => Some(Decommissioned {
            at_ms: to_u64(at),
            by: by.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let corrupt = |e: crate::device_id::InvalidName| StoreError::OutOfRange(format!("stored {e}"));
    let labels: String = r.try_get(5)?;
    Ok(Device {
        id: DeviceId::parse(r.try_get(0)?).map_err(corrupt)?,
        namespace: Namespace::parse(r.try_get(1)?).map_err(corrupt)?,
        approval: if r.try_get(2)? {
            Approval::Approved
        } else {
            Approval::Pending
        },
        registered: r.try_get(3)?,
        cert_used: r.try_get(4)?,
        labels: serde_json::from_str(&labels)?,
        hardware: json_opt(r.try_get(6)?)?,
        status: r.try_get(7)?,
        last_heartbeat: json_opt(r.try_get(8)?)?,
        last_seen_ms: r.try_get::<_, Option<i64>>(9)?.map(to_u64),
        enrolled_at_ms: to_u64(r.try_get(10)?),
        cert_serial: r.try_get(11)?,
        cert_not_after_ms: r.try_get::<_, Option<i64>>(12)?.map(to_u64),
        decommissioned,
        contact_interval_seconds: r
            .try_get::<_, Option<i64>>(15)?
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
    })
}

/// A row `(kind, namespace, name, body)` as a [`StoredObject`].
pub(super) fn object_from(r: &Row) -> Result<StoredObject, StoreError> {
    let body: String = r.try_get(3)?;
    Ok(StoredObject {
        kind: r.try_get(0)?,
        namespace: r.try_get(1)?,
        name: r.try_get(2)?,
        body: serde_json::from_str(&body)?,
    })
}

/// A row `(at_ms, received_ms, payload)` as a [`DeviceEvent`] (events and
/// log lines alike).
pub(super) fn device_event(r: &Row) -> Result<DeviceEvent, StoreError> {
    Ok(DeviceEvent {
        at_ms: to_u64(r.try_get(0)?),
        received_ms: to_u64(r.try_get(1)?),
        payload: r.try_get(2)?,
    })
}
