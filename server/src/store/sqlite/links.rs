//! Link addresses bound to devices (`link_bindings`) and the devices' SBD
//! facts (`sbd_status`), migration 5. The SBD facts of a fresh MO are
//! written by the frame's transaction ([`write_sbd_uplink`]).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::links::{LinkAddress, LinkKind};
use crate::store::{LinkBinding, SbdStatus, SbdUplink, StoreError};

fn device_id(s: String) -> Result<DeviceId, StoreError> {
    DeviceId::parse(&s).map_err(|e| StoreError::OutOfRange(format!("stored device id: {e}")))
}

/// Bind `address` to `id` (see [`crate::store::Store::bind_link`]).
pub(super) fn bind(
    conn: &mut Connection,
    address: &LinkAddress,
    id: &DeviceId,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let now = to_i64("time", now_ms)?;
    let tx = conn.transaction()?;
    let live: Option<Option<i64>> = tx
        .query_row(
            "SELECT decommissioned_at_ms FROM devices WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if !matches!(live, Some(None)) {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    }
    let holder: Option<String> = tx
        .query_row(
            "SELECT device_id FROM link_bindings WHERE kind = ?1 AND address = ?2",
            params![address.kind().as_str(), address.address()],
            |r| r.get(0),
        )
        .optional()?;
    match holder {
        Some(h) if h == id.as_str() => return Ok(false),
        Some(h) => {
            return Err(StoreError::AddressBound {
                address: address.to_string(),
                device: h,
            });
        }
        None => {}
    }
    tx.execute(
        "INSERT INTO link_bindings (kind, address, device_id, bound_ms) VALUES (?1, ?2, ?3, ?4)",
        params![address.kind().as_str(), address.address(), id.as_str(), now],
    )?;
    tx.commit()?;
    Ok(true)
}

/// Remove the binding of `address`.
pub(super) fn unbind(
    conn: &Connection,
    address: &LinkAddress,
) -> Result<Option<DeviceId>, StoreError> {
    let holder: Option<String> = conn
        .query_row(
            "DELETE FROM link_bindings WHERE kind = ?1 AND address = ?2 RETURNING device_id",
            params![address.kind().as_str(), address.address()],
            |r| r.get(0),
        )
        .optional()?;
    holder.map(device_id).transpose()
}

/// The device `address` is bound to.
pub(super) fn device_of(
    conn: &Connection,
    address: &LinkAddress,
) -> Result<Option<DeviceId>, StoreError> {
    let holder: Option<String> = conn
        .query_row(
            "SELECT device_id FROM link_bindings WHERE kind = ?1 AND address = ?2",
            params![address.kind().as_str(), address.address()],
            |r| r.get(0),
        )
        .optional()?;
    holder.map(device_id).transpose()
}

/// The addresses bound to `id`.
pub(super) fn of_device(conn: &Connection, id: &DeviceId) -> Result<Vec<LinkBinding>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT kind, address, bound_ms FROM link_bindings WHERE device_id = ?1
         ORDER BY kind, address",
    )?;
    let rows = stmt
        .query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(kind, address, bound)| {
            let corrupt = |e: crate::links::InvalidAddress| {
                StoreError::OutOfRange(format!("stored link address: {e}"))
            };
            let kind: LinkKind = kind.parse().map_err(corrupt)?;
            Ok(LinkBinding {
                address: LinkAddress::parse(kind, &address).map_err(corrupt)?,
                device_id: id.clone(),
                bound_ms: to_u64(bound),
            })
        })
        .collect()
}

/// The device's SBD facts.
pub(super) fn sbd_status(
    conn: &Connection,
    id: &DeviceId,
) -> Result<Option<SbdStatus>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT imei, last_momsn, latitude, longitude, cep_km, last_mo_ms, credits_day,
                 credits_used FROM sbd_status WHERE device_id = ?1",
            [id.as_str()],
            |r| {
                Ok(SbdStatus {
                    imei: r.get(0)?,
                    last_momsn: r
                        .get::<_, Option<i64>>(1)?
                        .and_then(|v| u32::try_from(v).ok()),
                    latitude: r.get(2)?,
                    longitude: r.get(3)?,
                    cep_km: r.get(4)?,
                    last_mo_ms: r.get::<_, Option<i64>>(5)?.map(to_u64),
                    credits_day: r.get(6)?,
                    credits_used: to_u64(r.get(7)?),
                })
            },
        )
        .optional()?)
}

/// Count credits on `day`: a new day starts again from zero.
const CREDITS_SQL: &str =
    "credits_used = CASE WHEN credits_day IS ?2 THEN credits_used + ?3 ELSE ?3 END,
     credits_day = ?2";

/// Count an accepted MT's credits.
pub(super) fn add_credits(
    conn: &Connection,
    id: &DeviceId,
    day: &str,
    credits: u32,
) -> Result<(), StoreError> {
    conn.execute(
        &format!("UPDATE sbd_status SET {CREDITS_SQL} WHERE device_id = ?1"),
        params![id.as_str(), day, i64::from(credits)],
    )?;
    Ok(())
}

/// In the frame's transaction: the SBD facts of a fresh MO.
pub(super) fn write_sbd_uplink(
    tx: &Transaction<'_>,
    id: &DeviceId,
    sbd: &SbdUplink,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sbd_status (device_id, imei) VALUES (?1, ?2)
         ON CONFLICT (device_id) DO NOTHING",
        params![id.as_str(), sbd.imei],
    )?;
    tx.execute(
        &format!(
            "UPDATE sbd_status SET imei = ?4, last_momsn = ?5, latitude = ?6, longitude = ?7,
                 cep_km = ?8, last_mo_ms = ?9, {CREDITS_SQL} WHERE device_id = ?1"
        ),
        params![
            id.as_str(),
            sbd.day,
            i64::from(sbd.credits),
            sbd.imei,
            i64::from(sbd.momsn),
            sbd.latitude,
            sbd.longitude,
            sbd.cep_km,
            now
        ],
    )?;
    Ok(())
}
