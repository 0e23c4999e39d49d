//! The device identity lifecycle in SQLite: which certificate serials a
//! device may use, renewal overlap, lapsed enrolments and decommissioning.
//!
//! Columns of `devices` (migration 3): `cert_serial` / `cert_not_after_ms`
//! (the current certificate), `next_cert_serial` / `next_cert_not_after_ms`
//! (a renewed certificate not used yet: accepted too, and its first use
//! makes it current), `decommissioned_at_ms` / `decommissioned_by`.
//! Decommissioning also deletes the device's frame keys (migration 4) and
//! its bound link addresses and SBD facts (migration 5).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::rows::{to_i64, to_u64};
use crate::device_id::{DeviceId, Namespace};
use crate::store::{
    CertStanding, Decommissioned, ENROLMENT_OBJECT_KINDS, IssuedCertificate, JsonEvent, StoreError,
};

/// Record a certificate issued to `id` (see [`IssuedCertificate::renewal`]).
pub(super) fn record_certificate(
    conn: &mut Connection,
    id: &DeviceId,
    cert: &IssuedCertificate,
    hardware: Option<&Value>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let now = to_i64("time", now_ms)?;
    let not_after = to_i64("notAfter", cert.not_after_ms)?;
    // The first certificate of a device (or the first after a
    // decommissioning) is current at once; any later one (a renewal, or a
    // registration again before the device used its certificate) waits
    // next to the current one until its first use.
    let sql = "UPDATE devices SET
         cert_serial = CASE WHEN cert_serial IS NULL AND registered = 0 THEN ?2 ELSE cert_serial END,
         cert_not_after_ms = CASE WHEN cert_serial IS NULL AND registered = 0 THEN ?3
             ELSE cert_not_after_ms END,
         next_cert_serial = CASE WHEN cert_serial IS NULL AND registered = 0 THEN NULL ELSE ?2 END,
         next_cert_not_after_ms = CASE WHEN cert_serial IS NULL AND registered = 0 THEN NULL
             ELSE ?3 END,
         cert_used = CASE WHEN ?6 THEN 1 ELSE cert_used END,
         registered = 1, registered_at_ms = ?4, hardware = COALESCE(?5, hardware)
     WHERE id = ?1";
    let n = tx.execute(
        sql,
        params![
            id.as_str(),
            cert.serial,
            not_after,
            now,
            hardware.map(Value::to_string),
            cert.renewal
        ],
    )?;
    if n == 0 {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    }
    tx.commit()?;
    Ok(())
}

type StandingRow = (
    Option<String>,
    Option<String>,
    bool,
    Option<i64>,
    Option<String>,
);

/// Judge a presented certificate; promote a renewed one on its first use.
pub(super) fn standing(
    conn: &mut Connection,
    id: &DeviceId,
    serial: &str,
) -> Result<CertStanding, StoreError> {
    let tx = conn.transaction()?;
    let row: Option<StandingRow> = tx
        .query_row(
            "SELECT cert_serial, next_cert_serial, registered, decommissioned_at_ms,
                    decommissioned_by
             FROM devices WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((current, next, registered, decommissioned_at, by)) = row else {
        return Ok(CertStanding::UnknownDevice);
    };
    if let Some(at) = decommissioned_at {
        return Ok(CertStanding::Revoked(Decommissioned {
            at_ms: to_u64(at),
            by: by.unwrap_or_default(),
        }));
    }
    let result = if current.as_deref() == Some(serial) {
        CertStanding::Current
    } else if next.as_deref() == Some(serial) {
        tx.execute(
            "UPDATE devices SET cert_serial = next_cert_serial,
                 cert_not_after_ms = next_cert_not_after_ms,
                 next_cert_serial = NULL, next_cert_not_after_ms = NULL, cert_used = 1
             WHERE id = ?1",
            [id.as_str()],
        )?;
        CertStanding::Promoted
    } else if current.is_none() && registered {
        CertStanding::Legacy
    } else {
        CertStanding::Superseded
    };
    tx.commit()?;
    Ok(result)
}

fn delete_enrolment_objects(
    conn: &Connection,
    id: &DeviceId,
    namespace: &str,
) -> Result<(), StoreError> {
    for kind in ENROLMENT_OBJECT_KINDS {
        conn.execute(
            "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
            params![kind, namespace, id.as_str()],
        )?;
    }
    Ok(())
}

/// Start the enrolment over when the current certificate lapsed.
pub(super) fn enrol_again_if_lapsed(
    conn: &mut Connection,
    id: &DeviceId,
    lapsed_before_ms: u64,
    auto_approve: bool,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let lapsed_before = to_i64("time", lapsed_before_ms)?;
    // The newest certificate issued (renewed or current) must have lapsed,
    // and been used (else the registration certificate may still register
    // the device; this also makes the reset happen once).
    let namespace: Option<String> = tx
        .query_row(
            "SELECT namespace FROM devices WHERE id = ?1 AND decommissioned_at_ms IS NULL
                 AND cert_used = 1
                 AND cert_not_after_ms IS NOT NULL AND cert_not_after_ms < ?2
                 AND (next_cert_not_after_ms IS NULL OR next_cert_not_after_ms < ?2)",
            params![id.as_str(), lapsed_before],
            |r| r.get(0),
        )
        .optional()?;
    let Some(namespace) = namespace else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE devices SET approved = ?2, cert_used = 0 WHERE id = ?1",
        params![id.as_str(), auto_approve],
    )?;
    delete_enrolment_objects(&tx, id, &namespace)?;
    tx.commit()?;
    Ok(true)
}

/// The enrolment of a decommissioned device: it starts over, pending
/// approval whatever `auto_approve` says. Returns whether the device was
/// decommissioned.
pub(super) fn enrol_decommissioned(
    conn: &Connection,
    id: &DeviceId,
    namespace: &Namespace,
    hardware: Option<&Value>,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE devices SET decommissioned_at_ms = NULL, decommissioned_by = NULL, approved = 0,
             namespace = ?2, hardware = COALESCE(?3, hardware), enrolled_at_ms = ?4
         WHERE id = ?1 AND decommissioned_at_ms IS NOT NULL",
        params![
            id.as_str(),
            namespace.as_str(),
            hardware.map(Value::to_string),
            to_i64("time", now_ms)?
        ],
    )?;
    Ok(n > 0)
}

/// Decommission the device (see [`crate::store::Store::decommission`]).
pub(super) fn decommission(
    conn: &mut Connection,
    id: &DeviceId,
    actor: &str,
    purge: bool,
    event: &JsonEvent,
    now_ms: u64,
) -> Result<(), StoreError> {
    let now = to_i64("time", now_ms)?;
    let tx = conn.transaction()?;
    let namespace: Option<String> = tx
        .query_row(
            "SELECT namespace FROM devices WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(namespace) = namespace else {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    };
    tx.execute(
        "UPDATE devices SET decommissioned_at_ms = ?2, decommissioned_by = ?3, approved = 0,
             registered = 0, cert_used = 0, cert_serial = NULL, cert_not_after_ms = NULL,
             next_cert_serial = NULL, next_cert_not_after_ms = NULL
         WHERE id = ?1",
        params![id.as_str(), now, actor],
    )?;
    delete_enrolment_objects(&tx, id, &namespace)?;
    // Frame keys (every epoch, by cascade) and pending fragments go with the
    // certificates: the device's frames are unknown keys from now on.
    // Bound link addresses go too: the IMEI may be bound to a new device.
    for table in [
        "frame_keys",
        "frame_fragments",
        "link_bindings",
        "sbd_status",
        "lorawan_status",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE device_id = ?1"),
            [id.as_str()],
        )?;
    }
    if purge {
        for table in ["records", "json_events", "device_config", "link_days"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE device_id = ?1"),
                [id.as_str()],
            )?;
        }
        tx.execute(
            "UPDATE devices SET status = NULL, last_heartbeat = NULL, last_heartbeat_seq = NULL,
                 hardware = NULL, labels = '{}'
             WHERE id = ?1",
            [id.as_str()],
        )?;
    }
    super::events::insert(&tx, id, std::slice::from_ref(event), now)?;
    tx.commit()?;
    Ok(())
}
