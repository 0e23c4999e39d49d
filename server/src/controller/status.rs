//! EdgeDevice status from what the device reported: phase (`up`/`degraded`),
//! workload phases from the last heartbeat (Flotta JSON or our batch
//! heartbeat), hardware, and presence with the last-seen time.
//!
//! `presence` (stored, updated on transitions), `lastSeenTime` and
//! `uploadIntervalSeconds` (added on reads by [`overlay_live`]) and `link` (added on reads by
//! [`overlay_link`], with `link.sbd` by [`overlay_sbd`], `link.lorawan` by [`overlay_lorawan`]) are additions to Flotta's status schema; the other
//! fields are Flotta's.

use serde_json::{Map, Value};

use super::presence::Presence;
use super::{rfc3339, wire};
use crate::store::{Device, FrameLinkStatus};

/// Workload statuses of a heartbeat: Flotta's `{name, status,
/// last_data_upload}` or our `{name, phase}`, as the CRD's `{name, phase,
/// lastDataUpload}`. `"workloads": null` (what Flotta's device worker sends
/// when it runs none) or no `workloads` at all is the empty list: a heartbeat
/// reports the device's whole state, so the previous list must not linger.
/// Only a heartbeat that is not a JSON object says nothing about workloads.
fn workloads(heartbeat: &Value) -> Option<Value> {
    let heartbeat = heartbeat.as_object()?;
    let Some(list) = heartbeat.get("workloads").and_then(Value::as_array) else {
        return Some(Value::Array(Vec::new()));
    };
    let out = list
        .iter()
        .filter_map(|w| {
            let name = w.get("name")?.as_str()?;
            let phase = w
                .get("status")
                .or_else(|| w.get("phase"))
                .and_then(Value::as_str);
            let mut m = Map::new();
            if let Some(t) = w
                .get("last_data_upload")
                .and_then(Value::as_str)
                .and_then(normalised_time)
            {
                m.insert("lastDataUpload".into(), Value::from(t));
            }
            m.insert("name".into(), Value::from(name));
            if let Some(p) = phase {
                m.insert("phase".into(), Value::from(p));
            }
            Some(Value::Object(m))
        })
        .collect();
    Some(Value::Array(out))
}

/// An RFC 3339 time as the CRD's `metav1.Time` writes it (UTC, seconds);
/// `None` when it does not parse (the decoder refuses those already).
fn normalised_time(text: &str) -> Option<String> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let ms = u64::try_from(t.unix_timestamp()).ok()?.checked_mul(1000)?;
    Some(rfc3339(ms))
}

/// The new status of the EdgeDevice `current` (its present status kept for
/// fields the controller does not own).
pub fn device_status(current: Option<&Value>, device: &Device, presence: Presence) -> Value {
    let mut status = current
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(phase) = &device.status {
        status.insert("phase".into(), Value::from(phase.as_str()));
    }
    if let Some(w) = device.last_heartbeat.as_ref().and_then(workloads) {
        status.insert("workloads".into(), w);
    }
    if let Some(hw) = device.hardware.as_ref().and_then(wire::hardware_to_crd) {
        status.insert(
            "hardware".into(),
            serde_json::to_value(hw).unwrap_or(Value::Null),
        );
    }
    status.insert("presence".into(), Value::from(presence.as_str()));
    Value::Object(status)
}

/// Overlay the live presence, last-seen time and the upload interval the
/// device reported on a status (for reads: the stored status changes only
/// on transitions, so a pass does not rewrite every EdgeDevice at every
/// heartbeat, nor when the interval changes).
pub fn overlay_live(status: &mut Value, device: &Device, presence: Presence) {
    if !status.is_object() {
        *status = Value::Object(Map::new());
    }
    status["presence"] = Value::from(presence.as_str());
    if let Some(ms) = device.last_seen_ms {
        status["lastSeenTime"] = Value::from(rfc3339(ms));
    }
    if let Some(s) = device.contact_interval_seconds {
        status["uploadIntervalSeconds"] = Value::from(s);
    }
}

/// Overlay the link the device last used and its sealed-frame counters
/// (for reads: they change with every frame), when there is anything to say.
pub fn overlay_link(status: &mut Value, link: &FrameLinkStatus) {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("lastLink", link.last_link.clone().map(Value::from));
    put(
        "frameKeyId",
        link.key_id
            .map(|k| Value::from(flotta_proto::frame_keys::hex(&k))),
    );
    put("frameEpoch", link.epoch.map(Value::from));
    put(
        "uplinkCounter",
        link.highest_uplink_counter.map(Value::from),
    );
    put("downlinkCounter", link.downlink_counter.map(Value::from));
    if link.key_id.is_some() || link.frames_stored > 0 || link.frames_duplicate > 0 {
        put("framesStored", Some(Value::from(link.frames_stored)));
        put("framesDuplicate", Some(Value::from(link.frames_duplicate)));
    }
    if m.is_empty() {
        return;
    }
    if !status.is_object() {
        *status = Value::Object(Map::new());
    }
    status["link"] = Value::Object(m);
}

/// Add the device's LoRaWAN facts under `status.link.lorawan` (`describe`
/// shows them): the bound DevEUI, the last uplink's FCnt, data rate, RSSI
/// and SNR, the uplink airtime and downlinks on the day counted.
pub fn overlay_lorawan(
    status: &mut Value,
    links: &[crate::store::LinkBinding],
    lora: Option<&crate::store::LorawanStatus>,
) {
    let dev_eui = links
        .iter()
        .find(|l| l.address.kind() == crate::links::LinkKind::Lorawan)
        .map(|l| l.address.address().to_owned());
    if dev_eui.is_none() && lora.is_none() {
        return;
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("devEui", dev_eui.map(Value::from));
    if let Some(s) = lora {
        put("lastDevEui", Some(Value::from(s.dev_eui.clone())));
        put("lastFCnt", s.last_f_cnt.map(Value::from));
        put("lastDr", s.last_dr.map(Value::from));
        put("rssi", s.rssi.map(Value::from));
        put("snr", s.snr.map(Value::from));
        put("airtimeDay", s.airtime_day.clone().map(Value::from));
        put("airtimeMs", Some(Value::from(s.airtime_us as f64 / 1000.0)));
        put("downlinks", Some(Value::from(s.downlinks)));
    }
    if !status.is_object() {
        *status = Value::Object(Map::new());
    }
    if !status["link"].is_object() {
        status["link"] = Value::Object(Map::new());
    }
    status["link"]["lorawan"] = Value::Object(m);
}

/// Add the device's Iridium SBD facts under `status.link.sbd` (`describe`
/// shows them): the bound IMEI, the last MOMSN, Iridium's position
/// estimate and the credits used on the day counted.
pub fn overlay_sbd(
    status: &mut Value,
    links: &[crate::store::LinkBinding],
    sbd: Option<&crate::store::SbdStatus>,
) {
    let imei = links
        .iter()
        .find(|l| l.address.kind() == crate::links::LinkKind::Sbd)
        .map(|l| l.address.address().to_owned());
    if imei.is_none() && sbd.is_none() {
        return;
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("imei", imei.map(Value::from));
    if let Some(s) = sbd {
        put("lastImei", Some(Value::from(s.imei.clone())));
        put("lastMomsn", s.last_momsn.map(Value::from));
        put("latitude", s.latitude.map(Value::from));
        put("longitude", s.longitude.map(Value::from));
        put("cepKm", s.cep_km.map(Value::from));
        put("creditsDay", s.credits_day.clone().map(Value::from));
        put("creditsUsed", Some(Value::from(s.credits_used)));
    }
    if !status.is_object() {
        *status = Value::Object(Map::new());
    }
    if !status["link"].is_object() {
        status["link"] = Value::Object(Map::new());
    }
    status["link"]["sbd"] = Value::Object(m);
}
