//! The Things Stack v3 webhook: `POST /tts/uplink` (set as the webhook's
//! "Uplink message" path; JSON format). The body is an
//! `ApplicationUp` with `uplink_message` (`f_port`, `f_cnt`,
//! `frm_payload` in base64, `rx_metadata[].rssi/snr`,
//! `settings.data_rate.lora`); empty, zero or false fields are omitted.
//!
//! 1. the configured header must carry the secret (401 otherwise; set it
//!    as one of the webhook's "Additional headers"), checked before the
//!    body is read;
//! 2. the body is decoded ([`decode_uplink`]; 400 when it does not);
//!    uplinks of another application than `tts_application_id` are
//!    answered 200 and counted (`other_application`);
//! 3. the uplink goes to [`LoraIngest`]; its answer is replaced into the
//!    device's TTS queue by the downlink worker, with the URL and API key
//!    of the configuration: `X-Downlink-Apikey`, `X-Downlink-Replace` and
//!    `X-Downlink-Push` of the request are never used (a request must not
//!    tell us where to send, nor with which key).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;

use super::airtime::Region;
use super::auth::SecretHeader;
use super::downlink::{DownlinkTarget, Network};
use super::ingest::{LoraIngest, OK, Reply};
use super::uplink::{LoraUplink, UplinkError, best, f_port, payload};
use crate::links::LinkAddress;

/// The route.
pub const ROUTE: &str = "/tts/uplink";

/// The webhook.
#[derive(Debug)]
pub struct TtsWebhook {
    /// The header and secret every request must carry.
    pub auth: SecretHeader,
    /// `tts_application_id`.
    pub application_id: String,
    /// The shared uplink path.
    pub lora: Arc<LoraIngest>,
}

/// The route, for the webhook listener.
pub fn router(webhook: Arc<TtsWebhook>) -> Router {
    Router::new().route(ROUTE, post(uplink)).with_state(webhook)
}

async fn uplink(State(w): State<Arc<TtsWebhook>>, headers: HeaderMap, body: Body) -> Reply {
    let (reply, result) = w.handle(&headers, body).await;
    w.lora.metrics.count_webhook(ROUTE, result);
    reply
}

impl TtsWebhook {
    async fn handle(&self, headers: &HeaderMap, body: Body) -> (Reply, &'static str) {
        if !self.auth.verify(headers) {
            return (
                (StatusCode::UNAUTHORIZED, "secret header required\n"),
                "unauthorized",
            );
        }
        let body = match self.lora.body(body).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        match decode_uplink(&body, self.lora.region) {
            Ok(up) if up.application_id.as_deref() != Some(self.application_id.as_str()) => {
                tracing::info!(application = ?up.application_id, "TTS uplink of another application");
                self.lora
                    .metrics
                    .count_lora_uplink(Network::Tts.label(), "other_application");
                (OK, "accepted")
            }
            Ok(up) => {
                let target = DownlinkTarget::Tts {
                    device_id: up.device_id,
                };
                self.lora.handle(up.uplink, target).await
            }
            Err(e) => self.lora.refuse(Network::Tts, &e),
        }
    }
}

/// A TTS uplink and the ids the downlink needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsUplink {
    /// The uplink.
    pub uplink: LoraUplink,
    /// `end_device_ids.device_id` (checked as TTS ids are).
    pub device_id: String,
    /// `end_device_ids.application_ids.application_id`.
    pub application_id: Option<String>,
}

#[derive(Deserialize)]
struct ApplicationUp {
    end_device_ids: Option<EndDeviceIds>,
    uplink_message: Option<UplinkMessage>,
    received_at: Option<String>,
}

#[derive(Deserialize)]
struct EndDeviceIds {
    device_id: Option<String>,
    dev_eui: Option<String>,
    application_ids: Option<ApplicationIds>,
}

#[derive(Deserialize)]
struct ApplicationIds {
    application_id: Option<String>,
}

#[derive(Deserialize)]
struct UplinkMessage {
    f_port: Option<u32>,
    f_cnt: Option<u32>,
    frm_payload: Option<String>,
    #[serde(default)]
    rx_metadata: Vec<RxMetadata>,
    settings: Option<Settings>,
    received_at: Option<String>,
}

#[derive(Deserialize)]
struct RxMetadata {
    rssi: Option<f64>,
    channel_rssi: Option<f64>,
    snr: Option<f64>,
}

#[derive(Deserialize)]
struct Settings {
    data_rate: Option<DataRate>,
    data_rate_index: Option<u32>,
}

#[derive(Deserialize)]
struct DataRate {
    lora: Option<LoraRate>,
}

#[derive(Deserialize)]
struct LoraRate {
    bandwidth: Option<u32>,
    spreading_factor: Option<u32>,
}

/// Whether `id` is a TTS identifier: lower-case letters, digits and single
/// dashes, starting and ending with a letter or digit, 3..=36 characters.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    (3..=36).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first() != Some(&b'-')
        && b.last() != Some(&b'-')
        && !id.contains("--")
}

/// Decode a webhook body carrying an `uplink_message`; the data rate index
/// comes from `settings.data_rate.lora` in `region` (or the deprecated
/// `data_rate_index`).
///
/// # Errors
/// [`UplinkError`]: not JSON of that shape, no `uplink_message`, a missing
/// or invalid DevEUI or device id, `frm_payload` not base64 or too long,
/// an invalid FPort.
pub fn decode_uplink(body: &[u8], region: Region) -> Result<TtsUplink, UplinkError> {
    let up: ApplicationUp =
        serde_json::from_slice(body).map_err(|e| UplinkError::Json(e.to_string()))?;
    let ids = up
        .end_device_ids
        .ok_or_else(|| UplinkError::field("end_device_ids", "missing"))?;
    let m = up.uplink_message.ok_or_else(|| {
        UplinkError::field(
            "uplink_message",
            "missing (is this the uplink message path?)",
        )
    })?;
    let dev_eui = ids.dev_eui.ok_or_else(|| {
        UplinkError::field("end_device_ids.dev_eui", "missing (devices need a DevEUI)")
    })?;
    let dev_eui = LinkAddress::dev_eui(&dev_eui)
        .map_err(|e| UplinkError::field("end_device_ids.dev_eui", e.to_string()))?;
    let device_id = ids
        .device_id
        .filter(|d| valid_id(d))
        .ok_or_else(|| UplinkError::field("end_device_ids.device_id", "missing or invalid"))?;
    let settings = m.settings.as_ref();
    let lora = settings
        .and_then(|s| s.data_rate.as_ref())
        .and_then(|d| d.lora.as_ref());
    let dr = match lora {
        Some(l) => l
            .spreading_factor
            .and_then(|sf| u8::try_from(sf).ok())
            .and_then(|sf| region.data_rate(sf, l.bandwidth.unwrap_or(0) / 1000)),
        None => settings
            .and_then(|s| s.data_rate_index)
            .and_then(|i| u8::try_from(i).ok())
            .filter(|i| *i <= 15),
    };
    let rx = &m.rx_metadata;
    Ok(TtsUplink {
        uplink: LoraUplink {
            dev_eui,
            f_cnt: m.f_cnt.unwrap_or(0),
            f_port: f_port("uplink_message.f_port", m.f_port)?,
            data: payload("uplink_message.frm_payload", m.frm_payload.as_deref())?,
            dr,
            rssi: best(rx.iter().map(|r| r.rssi.or(r.channel_rssi))),
            snr: best(rx.iter().map(|r| r.snr)),
            received_at: m.received_at.or(up.received_at),
        },
        device_id,
        application_id: ids.application_ids.and_then(|a| a.application_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Shaped as TTS's data-formats reference shows an uplink message.
    const EXAMPLE: &str = r#"{
      "end_device_ids":{"device_id":"dev1","application_ids":{"application_id":"app1"},
        "dev_eui":"0004A30B001C0530","join_eui":"800000000000000C","dev_addr":"00BCB929"},
      "correlation_ids":["as:up:01E0WZGT4A8QY2EH8FCE0RJ8MM"],
      "received_at":"2020-02-12T15:15:45.787Z",
      "uplink_message":{"session_key_id":"AXBSH1Pk6Z0G166BVkBlIA==","f_port":1,"f_cnt":2,
        "frm_payload":"AQID","rx_metadata":[{"gateway_ids":{"gateway_id":"gtw1"},
          "rssi":-35,"channel_rssi":-35,"snr":5.2,"uplink_token":"ChIKEAoOZ3R3MQ=="},
          {"gateway_ids":{"gateway_id":"gtw2"},"rssi":-90,"snr":7.5}],
        "settings":{"data_rate":{"lora":{"bandwidth":125000,"spreading_factor":7,"coding_rate":"4/5"}},
          "frequency":"868500000","timestamp":1234},
        "received_at":"2020-02-12T15:15:45.787Z","consumed_airtime":"0.056576s"}}"#;

    #[test]
    fn the_documented_shape_decodes() {
        let up = decode_uplink(EXAMPLE.as_bytes(), Region::Eu868).unwrap();
        assert_eq!(up.device_id, "dev1");
        assert_eq!(up.application_id.as_deref(), Some("app1"));
        let u = up.uplink;
        assert_eq!(u.dev_eui.address(), "0004a30b001c0530");
        assert_eq!((u.f_cnt, u.f_port, u.dr), (2, Some(1), Some(5)));
        assert_eq!(u.data, vec![1, 2, 3]);
        assert_eq!((u.rssi, u.snr), (Some(-35.0), Some(7.5)));
    }

    #[test]
    fn bad_bodies_are_refused() {
        for bad in [
            &b"{"[..],
            br#"{"end_device_ids":{"device_id":"dev1","dev_eui":"0004A30B001C0530"}}"#,
            br#"{"end_device_ids":{"device_id":"dev1"},"uplink_message":{}}"#,
            br#"{"end_device_ids":{"device_id":"../x","dev_eui":"0004A30B001C0530"},"uplink_message":{}}"#,
            br#"{"end_device_ids":{"device_id":"dev1","dev_eui":"0004A30B001C0530"},"uplink_message":{"frm_payload":"%"}}"#,
        ] {
            assert!(decode_uplink(bad, Region::Eu868).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(valid_id("my-device-1"));
        for bad in ["ab", "-ab", "ab-", "a--b", "Dev1", "a/b", &"a".repeat(37)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_uplink(&body, Region::Eu868);
        }

        #[test]
        fn valid_uplinks_round_trip(eui in any::<[u8; 8]>(), f_cnt in any::<u32>(),
                port in 1u8..=223, data in proptest::collection::vec(any::<u8>(), 1..=242),
                sf in 7u8..=12) {
            use base64::Engine;
            let dev_eui = LinkAddress::dev_eui_bytes(eui);
            let body = serde_json::json!({
                "end_device_ids": {"device_id": "dev-1", "dev_eui": dev_eui.address().to_ascii_uppercase(),
                    "application_ids": {"application_id": "app"}},
                "uplink_message": {"f_port": port, "f_cnt": f_cnt,
                    "frm_payload": base64::engine::general_purpose::STANDARD.encode(&data),
                    "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": sf}}}},
            });
            let up = decode_uplink(body.to_string().as_bytes(), Region::Eu868).unwrap();
            prop_assert_eq!(up.uplink.dev_eui, dev_eui);
            prop_assert_eq!((up.uplink.f_cnt, up.uplink.f_port), (f_cnt, Some(port)));
            prop_assert_eq!(up.uplink.dr, Some(12 - sf));
            prop_assert_eq!(up.uplink.data, data);
        }
    }
}
