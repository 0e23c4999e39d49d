//! The devices' LoRaWAN facts (`lorawan_status`): written by a fresh
//! frame's transaction ([`write_uplink`]) and when the network server
//! accepted a downlink ([`add_downlink`]). Airtime and downlinks count on
//! one UTC day: the first write of a new day starts both from zero.

use postgres::Transaction;

use super::rows::{to_i64, to_u64};
use crate::device_id::DeviceId;
use crate::store::{LoraUplinkFacts, LorawanStatus, StoreError};

/// The device's LoRaWAN facts.
pub(super) fn status(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
) -> Result<Option<LorawanStatus>, StoreError> {
    let row = tx.query_opt(
        "SELECT dev_eui, last_f_cnt, last_dr, rssi, snr, last_uplink_ms, airtime_day,
             airtime_us, downlinks FROM lorawan_status WHERE device_id = $1",
        &[&id.as_str()],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(LorawanStatus {
        dev_eui: r.try_get(0)?,
        last_f_cnt: r
            .try_get::<_, Option<i64>>(1)?
            .and_then(|v| u32::try_from(v).ok()),
        last_dr: r
            .try_get::<_, Option<i64>>(2)?
            .and_then(|v| u8::try_from(v).ok()),
        rssi: r.try_get(3)?,
        snr: r.try_get(4)?,
        last_uplink_ms: r.try_get::<_, Option<i64>>(5)?.map(to_u64),
        airtime_day: r.try_get(6)?,
        airtime_us: to_u64(r.try_get(7)?),
        downlinks: to_u64(r.try_get(8)?),
    }))
}

/// Move the counting day to `$2`: the counters of an older day are reset.
const NEW_DAY_SQL: &str = "airtime_us = CASE WHEN airtime_day IS NOT DISTINCT FROM $2::text
         THEN airtime_us ELSE 0 END,
     downlinks = CASE WHEN airtime_day IS NOT DISTINCT FROM $2::text THEN downlinks ELSE 0 END,
     airtime_day = $2::text";

/// Count a downlink the network server accepted.
pub(super) fn add_downlink(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    day: &str,
) -> Result<(), StoreError> {
    tx.execute(
        &format!("UPDATE lorawan_status SET {NEW_DAY_SQL} WHERE device_id = $1"),
        &[&id.as_str(), &day],
    )?;
    tx.execute(
        "UPDATE lorawan_status SET downlinks = downlinks + 1 WHERE device_id = $1",
        &[&id.as_str()],
    )?;
    Ok(())
}

/// In the frame's transaction: the LoRaWAN facts of a fresh uplink.
pub(super) fn write_uplink(
    tx: &mut Transaction<'_>,
    id: &DeviceId,
    up: &LoraUplinkFacts,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO lorawan_status (device_id, dev_eui) VALUES ($1, $2)
         ON CONFLICT (device_id) DO NOTHING",
        &[&id.as_str(), &up.dev_eui],
    )?;
    tx.execute(
        &format!("UPDATE lorawan_status SET {NEW_DAY_SQL} WHERE device_id = $1"),
        &[&id.as_str(), &up.day],
    )?;
    tx.execute(
        "UPDATE lorawan_status SET dev_eui = $2, last_f_cnt = $3, last_dr = $4, rssi = $5,
             snr = $6, last_uplink_ms = $7, airtime_us = airtime_us + $8 WHERE device_id = $1",
        &[
            &id.as_str(),
            &up.dev_eui,
            &i64::from(up.f_cnt),
            &up.dr.map(i64::from),
            &up.rssi,
            &up.snr,
            &now,
            &to_i64("airtime", up.airtime_us)?,
        ],
    )?;
    Ok(())
}
