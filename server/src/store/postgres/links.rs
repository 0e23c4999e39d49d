//! Link addresses bound to devices (`link_bindings`) and the devices' SBD
//! facts (`sbd_status`). The SBD facts of a fresh MO are written by the
//! frame's transaction ([`write_sbd_uplink`]). Two replicas binding the
//! same address race on its primary key: the loser's transaction is
//! retried and then sees the winner's binding.

use postgres::Transaction;

use super::rows::{device_id, to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::links::{LinkAddress, LinkKind};
use crate::store::{LinkBinding, SbdStatus, SbdUplink, StoreError};

/// Bind `address` to `id` (see [`crate::store::Store::bind_link`]).
pub(super) fn bind(
    tx: &mut Transaction<'_>,
    address: &LinkAddress,
    id: &DeviceId,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let now = to_i64("time", now_ms)?;
    let live = tx.query_opt(
        "SELECT decommissioned_at_ms FROM devices WHERE id = $1",
        &[&id.as_str()],
    )?;
    let live = live.map(|r| r.try_get::<_, Option<i64>>(0)).transpose()?;
    if !matches!(live, Some(None)) {
        return Err(StoreError::DeviceNotFound(id.to_string()));
    }
    let holder = tx.query_opt(
        "SELECT device_id FROM link_bindings WHERE kind = $1 AND address = $2",
        &[&address.kind().as_str(), &address.address()],
    )?;
    if let Some(row) = holder {
        let h: String = row.try_get(0)?;
        if h == id.as_str() {
            return Ok(false);
        }
        return Err(StoreError::AddressBound {
            address: address.to_string(),
            device: h,
        });
    }
    tx.execute(
        "INSERT INTO link_bindings (kind, address, device_id, bound_ms) VALUES ($1, $2, $3, $4)",
        &[
            &address.kind().as_str(),
            &address.address(),
            &id.as_str(),
            &now,
        ],
    )?;
    Ok(true)
}

/// Remove the binding of `address`.
pub(super) fn unbind(
    tx: &mut Transaction<'_>,
    address: &LinkAddress,
) -> Result<Option<DeviceId>, StoreError> {
    let row = tx.query_opt(
        "DELETE FROM link_bindings WHERE kind = $1 AND address = $2 RETURNING device_id",
        &[&address.kind().as_str(), &address.address()],
    )?;
    row.map(|r| device_id(r.try_get(0)?)).transpose()
}

/// The device `address` is bound to.
pub(super) fn device_of(
    tx: &mut Transaction<'_>,
    address: &LinkAddress,
) -> Result<Option<DeviceId>, StoreError> {
    let row = tx.query_opt(
        "SELECT device_id FROM link_bindings WHERE kind = $1 AND address = $2",
        &[&address.kind().as_str(), &address.address()],
    )?;
    row.map(|r| device_id(r.try_get(0)?)).transpose()
}

/// The addresses bound to `id`.
pub(super) fn of_device(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
) -> Result<Vec<LinkBinding>, StoreError> {
    let rows = tx.query(
        "SELECT kind, address, bound_ms FROM link_bindings WHERE device_id = $1
         ORDER BY kind, address",
        &[&id.as_str()],
    )?;
    rows.iter()
        .map(|r| {
            let corrupt = |e: crate::links::InvalidAddress| {
                StoreError::OutOfRange(format!("stored link address: {e}"))
            };
            let kind: LinkKind = r.try_get::<_, &str>(0)?.parse().map_err(corrupt)?;
            Ok(LinkBinding {
                address: LinkAddress::parse(kind, r.try_get(1)?).map_err(corrupt)?,
                device_id: id.clone(),
                bound_ms: to_u64(r.try_get(2)?),
            })
        })
        .collect()
}

/// The device's SBD facts.
pub(super) fn sbd_status(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
) -> Result<Option<SbdStatus>, StoreError> {
    let row = tx.query_opt(
        "SELECT imei, last_momsn, latitude, longitude, cep_km, last_mo_ms, credits_day,
             credits_used FROM sbd_status WHERE device_id = $1",
        &[&id.as_str()],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(SbdStatus {
        imei: r.try_get(0)?,
        last_momsn: r
            .try_get::<_, Option<i64>>(1)?
            .and_then(|v| u32::try_from(v).ok()),
        latitude: r.try_get(2)?,
        longitude: r.try_get(3)?,
        cep_km: r.try_get(4)?,
        last_mo_ms: r.try_get::<_, Option<i64>>(5)?.map(to_u64),
        credits_day: r.try_get(6)?,
        credits_used: to_u64(r.try_get(7)?),
    }))
}

/// Count credits on `day` (`$2`, `$3` credits): a new day starts again
/// from zero.
const CREDITS_SQL: &str = "credits_used = CASE WHEN credits_day IS NOT DISTINCT FROM $2::text
         THEN credits_used + $3::bigint ELSE $3::bigint END,
     credits_day = $2::text";

/// Count an accepted MT's credits.
pub(super) fn add_credits(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    day: &str,
    credits: u32,
) -> Result<(), StoreError> {
    tx.execute(
        &format!("UPDATE sbd_status SET {CREDITS_SQL} WHERE device_id = $1"),
        &[&id.as_str(), &day, &i64::from(credits)],
    )?;
    Ok(())
}

/// In the frame's transaction: the SBD facts of a fresh MO.
pub(super) fn write_sbd_uplink(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    sbd: &SbdUplink,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sbd_status (device_id, imei) VALUES ($1, $2)
         ON CONFLICT (device_id) DO NOTHING",
        &[&id.as_str(), &sbd.imei],
    )?;
    tx.execute(
        &format!(
            "UPDATE sbd_status SET imei = $4, last_momsn = $5, latitude = $6, longitude = $7,
                 cep_km = $8, last_mo_ms = $9, {CREDITS_SQL} WHERE device_id = $1"
        ),
        &[
            &id.as_str(),
            &sbd.day,
            &i64::from(sbd.credits),
            &sbd.imei,
            &i64::from(sbd.momsn),
            &sbd.latitude,
            &sbd.longitude,
            &sbd.cep_km,
            &now,
        ],
    )?;
    Ok(())
}
