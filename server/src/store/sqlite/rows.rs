//! Conversions between SQLite rows and store types.

use flotta_proto::record::RecordClass;
use rusqlite::Row;
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

pub(super) const DEVICE_COLUMNS: &str = "id, namespace, approved, registered, cert_used, labels, hardware, \
     status, last_heartbeat, last_seen_ms, enrolled_at_ms, cert_serial, cert_not_after_ms, \
     decommissioned_at_ms, decommissioned_by, contact_interval_seconds";

/// Raw device row; JSON columns parsed afterwards so errors surface as
/// [`StoreError::CorruptJson`].
pub(super) type DeviceRow = (
    String,
    String,
    bool,
    bool,
    bool,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

pub(super) fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

pub(super) fn device_from(row: DeviceRow) -> Result<Device, StoreError> {
    let (id, ns, approved, registered, cert_used, labels, hw, status, hb, seen, enrolled) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10,
    );
    let decommissioned = match (row.13, row.14) {
        (Some(at), by) => Some(Decommissioned {
            at_ms: to_u64(at),
            by: by.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let corrupt = |e: crate::device_id::InvalidName| StoreError::OutOfRange(format!("stored {e}"));
    Ok(Device {
        id: DeviceId::parse(&id).map_err(corrupt)?,
        namespace: Namespace::parse(&ns).map_err(corrupt)?,
        approval: if approved {
            Approval::Approved
        } else {
            Approval::Pending
        },
        registered,
        cert_used,
        labels: serde_json::from_str(&labels)?,
        hardware: json_opt(hw)?,
        status,
        last_heartbeat: json_opt(hb)?,
        last_seen_ms: seen.map(to_u64),
        enrolled_at_ms: to_u64(enrolled),
        cert_serial: row.11,
        cert_not_after_ms: row.12.map(to_u64),
        decommissioned,
        contact_interval_seconds: row.15.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
    })
}

pub(super) fn object_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

pub(super) fn object_from(
    row: (String, String, String, String),
) -> Result<StoredObject, StoreError> {
    Ok(StoredObject {
        kind: row.0,
        namespace: row.1,
        name: row.2,
        body: serde_json::from_str(&row.3)?,
    })
}

/// A row `(at_ms, received_ms, payload)` as a [`DeviceEvent`] (events and
/// log lines alike).
pub(super) fn device_event(r: &Row<'_>) -> rusqlite::Result<DeviceEvent> {
    Ok(DeviceEvent {
        at_ms: to_u64(r.get(0)?),
        received_ms: to_u64(r.get(1)?),
        payload: r.get(2)?,
    })
}
