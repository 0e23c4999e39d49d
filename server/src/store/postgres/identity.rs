//! The device identity lifecycle in PostgreSQL: which certificate serials a
//! device may use, renewal overlap, lapsed enrolments and decommissioning
//! (the same columns and rules as the SQLite backend's `identity.rs`).
//!
//! Each function reads the device row `FOR UPDATE` before changing it, or
//! changes it in one `UPDATE` whose `WHERE` says what it must still be, so
//! two replicas promoting the same renewed certificate, or decommissioning
//! while a certificate is recorded, take turns. That holds at READ
//! COMMITTED, where enrolment, certificates and standings run (no predicate
//! locks: enrolments of different devices never conflict);
//! decommissioning runs SERIALIZABLE.

use postgres::Transaction;
use postgres::types::Type;
use serde_json::Value;

use super::rows::{to_i64, to_u64};
use crate::device_id::{DeviceId, Namespace};
use crate::store::{
    Approval, CertStanding, Decommissioned, ENROLMENT_OBJECT_KINDS, EnrolOutcome,
    IssuedCertificate, JsonEvent, StoreError,
};

/// Record a certificate issued to `id` (see [`IssuedCertificate::renewal`]).
pub(super) fn record_certificate(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    cert: &IssuedCertificate,
    hardware: Option<&Value>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let now = to_i64("time", now_ms)?;
    let not_after = to_i64("notAfter", cert.not_after_ms)?;
    // The first certificate of a device (or the first after a
    // decommissioning) is current at once; any later one waits next to the
    // current one until its first use.
    let sql = "UPDATE devices SET
         cert_serial = CASE WHEN cert_serial IS NULL AND NOT registered THEN $2
             ELSE cert_serial END,
         cert_not_after_ms = CASE WHEN cert_serial IS NULL AND NOT registered THEN $3
             ELSE cert_not_after_ms END,
         next_cert_serial = CASE WHEN cert_serial IS NULL AND NOT registered THEN NULL
             ELSE $2 END,
         next_cert_not_after_ms = CASE WHEN cert_serial IS NULL AND NOT registered THEN NULL
             ELSE $3 END,
         cert_used = CASE WHEN $6::boolean THEN true ELSE cert_used END,
         registered = true, registered_at_ms = $4, hardware = COALESCE($5::text, hardware)
     WHERE id = $1";
    let n = tx.execute(
        sql,
        &[
            &id.as_str(),
            &cert.serial,
            &not_after,
            &now,
            &hardware.map(Value::to_string),
            &cert.renewal,
        ],
    )?;
    if n == 0 {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    }
    Ok(())
}

/// Enrol `id` (see [`crate::store::Store::enrol`]). At READ COMMITTED:
/// `INSERT … ON CONFLICT DO NOTHING` makes exactly one of racing
/// enrolments of a new device create it, without reading an absent key (a
/// SERIALIZABLE read of an absent key locks the index page where it would
/// be: enrolments of `dev-000001` and `dev-000002` then failed each other);
/// an existing device's row is read `FOR UPDATE`, so what follows acts on
/// its newest version.
pub(super) fn enrol(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    namespace: &Namespace,
    hardware: Option<&Value>,
    auto_approve: bool,
    now_ms: u64,
) -> Result<EnrolOutcome, StoreError> {
    let now = to_i64("time", now_ms)?;
    let created = tx.execute(
        "INSERT INTO devices (id, namespace, approved, hardware, enrolled_at_ms)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        &[
            &id.as_str(),
            &namespace.as_str(),
            &auto_approve,
            &hardware.map(Value::to_string),
            &now,
        ],
    )?;
    if created == 1 {
        return Ok(EnrolOutcome::Created(if auto_approve {
            Approval::Approved
        } else {
            Approval::Pending
        }));
    }
    let row = tx.query_opt(
        "SELECT approved, decommissioned_at_ms IS NOT NULL FROM devices WHERE id = $1 FOR UPDATE",
        &[&id.as_str()],
    )?;
    let Some(row) = row else {
        // Rows of devices are never deleted; should one be, the call is
        // retried and inserts it.
        return Err(StoreError::Conflict(format!(
            "device \"{id}\" vanished during its enrolment"
        )));
    };
    let (approved, decommissioned): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    if decommissioned {
        enrol_decommissioned(tx, id, namespace, hardware, now_ms)?;
        return Ok(EnrolOutcome::Created(Approval::Pending));
    }
    if approved {
        return Ok(EnrolOutcome::AlreadyApproved);
    }
    if let Some(hw) = hardware {
        tx.execute(
            "UPDATE devices SET hardware = $2 WHERE id = $1",
            &[&id.as_str(), &hw.to_string()],
        )?;
    }
    Ok(EnrolOutcome::StillPending)
}

/// Judge a presented certificate; promote a renewed one on its first use.
/// Called on every request: the judgement reads without locking (a request
/// judged just before a decommissioning commits is served, as it would be
/// had it come a moment earlier), and only a promotion writes, in one
/// `UPDATE` that checks the serial is still the next one (PostgreSQL
/// re-checks it on the newest row version), so of two racing first uses
/// one promotes and the other judges again and finds it current.
pub(super) fn standing(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    serial: &str,
) -> Result<CertStanding, StoreError> {
    loop {
        let standing = judge(tx, id, serial)?;
        if standing != CertStanding::Promoted {
            return Ok(standing);
        }
        let n = tx.execute(
            "UPDATE devices SET cert_serial = next_cert_serial,
                 cert_not_after_ms = next_cert_not_after_ms,
                 next_cert_serial = NULL, next_cert_not_after_ms = NULL, cert_used = true
             WHERE id = $1 AND next_cert_serial = $2 AND decommissioned_at_ms IS NULL",
            &[&id.as_str(), &serial],
        )?;
        if n == 1 {
            return Ok(CertStanding::Promoted);
        }
    }
}

/// A presented certificate's standing as the row says now; `Promoted` for
/// "the next serial" (the caller promotes it).
fn judge(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    serial: &str,
) -> Result<CertStanding, StoreError> {
    let row = tx.query_typed_opt(
        "SELECT cert_serial, next_cert_serial, registered, decommissioned_at_ms,
                decommissioned_by
         FROM devices WHERE id = $1",
        &[(&id.as_str(), Type::TEXT)],
    )?;
    let Some(row) = row else {
        return Ok(CertStanding::UnknownDevice);
    };
    let current: Option<String> = row.try_get(0)?;
    let next: Option<String> = row.try_get(1)?;
    let registered: bool = row.try_get(2)?;
    if let Some(at) = row.try_get::<_, Option<i64>>(3)? {
        return Ok(CertStanding::Revoked(Decommissioned {
            at_ms: to_u64(at),
            by: row.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
        }));
    }
    Ok(if current.as_deref() == Some(serial) {
        CertStanding::Current
    } else if next.as_deref() == Some(serial) {
        CertStanding::Promoted
    } else if current.is_none() && registered {
        CertStanding::Legacy
    } else {
        CertStanding::Superseded
    })
}

fn delete_enrolment_objects(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    namespace: &str,
) -> Result<(), StoreError> {
    for kind in ENROLMENT_OBJECT_KINDS {
        tx.execute(
            "DELETE FROM objects WHERE kind = $1 AND namespace = $2 AND name = $3",
            &[&kind, &namespace, &id.as_str()],
        )?;
    }
    Ok(())
}

/// Start the enrolment over when the current certificate lapsed.
pub(super) fn enrol_again_if_lapsed(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    lapsed_before_ms: u64,
    auto_approve: bool,
) -> Result<bool, StoreError> {
    let lapsed_before = to_i64("time", lapsed_before_ms)?;
    let row = tx.query_opt(
        "SELECT namespace FROM devices WHERE id = $1 AND decommissioned_at_ms IS NULL
             AND cert_used
             AND cert_not_after_ms IS NOT NULL AND cert_not_after_ms < $2
             AND (next_cert_not_after_ms IS NULL OR next_cert_not_after_ms < $2)
         FOR UPDATE",
        &[&id.as_str(), &lapsed_before],
    )?;
    let Some(row) = row else {
        return Ok(false);
    };
    let namespace: String = row.try_get(0)?;
    tx.execute(
        "UPDATE devices SET approved = $2, cert_used = false WHERE id = $1",
        &[&id.as_str(), &auto_approve],
    )?;
    delete_enrolment_objects(tx, id, &namespace)?;
    Ok(true)
}

/// The enrolment of a decommissioned device: it starts over, pending
/// approval whatever `auto_approve` says. Returns whether the device was
/// decommissioned.
fn enrol_decommissioned(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    namespace: &Namespace,
    hardware: Option<&Value>,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE devices SET decommissioned_at_ms = NULL, decommissioned_by = NULL,
             approved = false, namespace = $2, hardware = COALESCE($3::text, hardware),
             enrolled_at_ms = $4
         WHERE id = $1 AND decommissioned_at_ms IS NOT NULL",
        &[
            &id.as_str(),
            &namespace.as_str(),
            &hardware.map(Value::to_string),
            &to_i64("time", now_ms)?,
        ],
    )?;
    Ok(n > 0)
}

/// Decommission the device (see [`crate::store::Store::decommission`]).
pub(super) fn decommission(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    actor: &str,
    purge: bool,
    event: &JsonEvent,
    now_ms: u64,
) -> Result<(), StoreError> {
    let now = to_i64("time", now_ms)?;
    let row = tx.query_opt(
        "SELECT namespace FROM devices WHERE id = $1 FOR UPDATE",
        &[&id.as_str()],
    )?;
    let Some(row) = row else {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    };
    let namespace: String = row.try_get(0)?;
    tx.execute(
        "UPDATE devices SET decommissioned_at_ms = $2, decommissioned_by = $3, approved = false,
             registered = false, cert_used = false, cert_serial = NULL,
             cert_not_after_ms = NULL, next_cert_serial = NULL, next_cert_not_after_ms = NULL
         WHERE id = $1",
        &[&id.as_str(), &now, &actor],
    )?;
    delete_enrolment_objects(tx, id, &namespace)?;
    // Frame keys (every epoch, by cascade), pending fragments and bound
    // link addresses go with the certificates.
    for table in [
        "frame_keys",
        "frame_fragments",
        "link_bindings",
        "sbd_status",
        "lorawan_status",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE device_id = $1"),
            &[&id.as_str()],
        )?;
    }
    if purge {
        for table in ["records", "json_events", "device_config", "link_days"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE device_id = $1"),
                &[&id.as_str()],
            )?;
        }
        tx.execute(
            "UPDATE devices SET status = NULL, last_heartbeat = NULL, last_heartbeat_seq = NULL,
                 hardware = NULL, labels = '{}'
             WHERE id = $1",
            &[&id.as_str()],
        )?;
    }
    super::events::insert(tx, id, std::slice::from_ref(event), now)?;
    Ok(())
}
