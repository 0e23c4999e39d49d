//! ChirpStack v4's HTTP integration: `POST /chirpstack?event=<type>`, one
//! request per event, JSON marshaler (the protobuf JSON mapping of
//! `integration.UplinkEvent`: camelCase names, **fields holding their
//! default value omitted**, bytes in base64, the DevEUI as hex in
//! `deviceInfo.devEui`).
//!
//! 1. the configured header must carry the secret (401 otherwise; set it
//!    in the integration's "Headers"), checked before the body is read;
//! 2. `event=up` is decoded into `chirpstack_api`'s own
//!    `integration::UplinkEvent` and checked ([`decode_up`]; 400 when it
//!    does not) and goes to [`LoraIngest`]; the other events ChirpStack sends (`join`, `ack`,
//!    `txack`, `log`, `status`, `location`, `integration`) are answered 200
//!    and counted (`event_<name>`), never stored; no `event` is a 400;
//! 3. 200 for anything authenticated and decoded, usable or not (ChirpStack
//!    does not retry anyway); 503 when the store failed.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chirpstack_api::integration::UplinkEvent;
use chirpstack_api::pbjson_types::Timestamp;

use super::auth::SecretHeader;
use super::downlink::{DownlinkTarget, Network};
use super::ingest::{LoraIngest, OK, Reply};
use super::uplink::{LoraUplink, MAX_FRM_PAYLOAD_BYTES, UplinkError, best, f_port};
use crate::links::LinkAddress;

/// The route.
pub const ROUTE: &str = "/chirpstack";

/// The events ChirpStack's HTTP integration posts besides `up`.
pub const OTHER_EVENTS: [&str; 7] = [
    "join",
    "ack",
    "txack",
    "log",
    "status",
    "location",
    "integration",
];

/// The webhook.
#[derive(Debug)]
pub struct ChirpstackWebhook {
    /// The header and secret every request must carry.
    pub auth: SecretHeader,
    /// The shared uplink path.
    pub lora: Arc<LoraIngest>,
}

/// The route, for the webhook listener.
pub fn router(webhook: Arc<ChirpstackWebhook>) -> Router {
    Router::new().route(ROUTE, post(event)).with_state(webhook)
}

async fn event(
    State(w): State<Arc<ChirpstackWebhook>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    let (reply, result) = w.handle(query.as_deref(), &headers, body).await;
    w.lora.metrics.count_webhook(ROUTE, result);
    reply
}

/// The `event` of a query string.
fn event_of(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "event")
        .map(|(_, v)| v)
}

impl ChirpstackWebhook {
    async fn handle(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Body,
    ) -> (Reply, &'static str) {
        if !self.auth.verify(headers) {
            return (
                (StatusCode::UNAUTHORIZED, "secret header required\n"),
                "unauthorized",
            );
        }
        let label = Network::ChirpStack.label();
        let Some(event) = event_of(query) else {
            return (
                (StatusCode::BAD_REQUEST, "?event= required\n"),
                "bad_request",
            );
        };
        if event != "up" {
            let counted = OTHER_EVENTS
                .iter()
                .find(|e| **e == event)
                .map_or("event_other", |e| match *e {
                    "join" => "event_join",
                    "ack" => "event_ack",
                    "txack" => "event_txack",
                    "log" => "event_log",
                    "status" => "event_status",
                    "location" => "event_location",
                    _ => "event_integration",
                });
            self.lora.metrics.count_lora_uplink(label, counted);
            return (OK, "accepted");
        }
        let body = match self.lora.body(body).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        match decode_up(&body) {
            Ok(up) => {
                let target = DownlinkTarget::ChirpStack {
                    dev_eui: up.dev_eui.address().to_owned(),
                };
                self.lora.handle(up, target).await
            }
            Err(e) => self.lora.refuse(Network::ChirpStack, &e),
        }
    }
}

/// Decode an `up` event body (JSON marshaler) into ChirpStack's own
/// [`UplinkEvent`] (`chirpstack_api`, pbjson: camelCase or proto names,
/// unknown fields ignored, bytes in standard or URL-safe base64), then
/// check what we use. Omitted fields hold their default (the protobuf JSON
/// mapping leaves them out): `dr` 0 is DR0, `fPort` 0 no application port.
///
/// # Errors
/// [`UplinkError`]: not JSON of that shape (`data` not base64 included),
/// no or an invalid DevEUI, `data` too long, an invalid FPort or data rate.
pub fn decode_up(body: &[u8]) -> Result<LoraUplink, UplinkError> {
    let ev: UplinkEvent = serde_json::from_slice(body)
        .map_err(|e| UplinkError::Json(format!("{e} (is the integration's marshaler JSON?)")))?;
    let dev_eui = ev
        .device_info
        .map(|d| d.dev_eui)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| UplinkError::field("deviceInfo.devEui", "missing"))?;
    let dev_eui = LinkAddress::dev_eui(&dev_eui)
        .map_err(|e| UplinkError::field("deviceInfo.devEui", e.to_string()))?;
    let dr = match ev.dr {
        dr @ 0..=15 => u8::try_from(dr).ok(),
        dr => return Err(UplinkError::field("dr", format!("{dr} is not a data rate"))),
    };
    if ev.data.len() > MAX_FRM_PAYLOAD_BYTES {
        return Err(UplinkError::field(
            "data",
            format!("longer than {MAX_FRM_PAYLOAD_BYTES} bytes"),
        ));
    }
    Ok(LoraUplink {
        dev_eui,
        f_cnt: ev.f_cnt,
        f_port: f_port("fPort", Some(ev.f_port))?,
        data: ev.data,
        dr,
        rssi: best(ev.rx_info.iter().map(|r| Some(f64::from(r.rssi)))),
        snr: best(ev.rx_info.iter().map(|r| Some(snr(r.snr)))),
        received_at: ev.time.as_ref().and_then(rfc3339),
    })
}

/// An SNR as the JSON wrote it: ChirpStack's is an `f32`, so `6.2` is
/// read as 6.19999980926…; its shortest decimal is what was sent.
fn snr(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::NAN)
}

/// A protobuf timestamp in RFC 3339 (UTC, `Z`).
fn rfc3339(t: &Timestamp) -> Option<String> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ChirpStack's documented example (`integrations/events.md`), fCnt
    /// omitted because it is 0.
    const EXAMPLE: &str = r#"{"deduplicationId":"3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
      "time":"2022-07-18T09:34:15.775023242+00:00",
      "deviceInfo":{"tenantId":"52f14cd4-c6f1-4fbd-8f87-4025e1d49242","tenantName":"ChirpStack",
        "applicationId":"17c82e96-be03-4f38-aef3-f83d48582d97","applicationName":"Test application",
        "deviceProfileId":"14855bf7-d10d-4aee-b618-ebfcb64dc7ad","deviceProfileName":"Test device profile",
        "deviceName":"Test device","devEui":"0101010101010101","tags":{"key":"value"}},
      "devAddr":"00189440","dr":1,"fPort":1,"data":"qg==",
      "rxInfo":[{"gatewayId":"0016c001f153a14c","uplinkId":4217106255,"rssi":-36,"snr":10.5,
        "context":"E3OWOQ==","metadata":{"region_name":"eu868","region_common_name":"EU868"}}],
      "txInfo":{"frequency":867100000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":11,"codeRate":"CR_4_5"}}}}"#;

    #[test]
    fn the_documented_example_decodes() {
        let up = decode_up(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(up.dev_eui.address(), "0101010101010101");
        assert_eq!((up.f_cnt, up.f_port, up.dr), (0, Some(1), Some(1)));
        assert_eq!(up.data, vec![0xaa]);
        assert_eq!((up.rssi, up.snr), (Some(-36.0), Some(10.5)));
        assert_eq!(
            up.received_at.as_deref(),
            Some("2022-07-18T09:34:15.775023242Z")
        );
    }

    #[test]
    fn omitted_fields_default_and_bad_ones_are_refused() {
        let up = decode_up(br#"{"deviceInfo":{"devEui":"0A0B0C0D0E0F1011"}}"#).unwrap();
        assert_eq!(up.dev_eui.address(), "0a0b0c0d0e0f1011");
        assert_eq!((up.f_port, up.dr, up.rssi), (None, Some(0), None));
        assert!(up.data.is_empty());
        for bad in [
            &b"not json"[..],
            br#"[]"#,
            br#"{}"#,
            br#"{"deviceInfo":{"devEui":"0101"}}"#,
            br#"{"deviceInfo":{"devEui":"0101010101010101"},"data":"***"}"#,
            br#"{"deviceInfo":{"devEui":"0101010101010101"},"fPort":300}"#,
            br#"{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":-1}"#,
            br#"{"deviceInfo":{"devEui":"0101010101010101"},"dr":99}"#,
        ] {
            assert!(decode_up(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(event_of(Some("event=up")).as_deref(), Some("up"));
        assert_eq!(event_of(Some("x=1&event=join")).as_deref(), Some("join"));
        assert_eq!(event_of(None), None);
    }

    #[test]
    fn events_the_crate_writes_decode() {
        // chirpstack_api writes integration events with every field (its
        // pbjson emits defaults): the same decoding reads them.
        use chirpstack_api::gw::UplinkRxInfo;
        use chirpstack_api::integration::DeviceInfo;
        let ev = UplinkEvent {
            device_info: Some(DeviceInfo {
                dev_eui: "0102030405060708".into(),
                ..DeviceInfo::default()
            }),
            f_cnt: 9,
            f_port: 10,
            dr: 5,
            data: vec![1, 2, 3],
            rx_info: vec![
                UplinkRxInfo {
                    rssi: -110,
                    snr: -3.5,
                    ..UplinkRxInfo::default()
                },
                UplinkRxInfo {
                    rssi: -97,
                    snr: 6.2,
                    ..UplinkRxInfo::default()
                },
            ],
            time: Some(Timestamp {
                seconds: 1_764_547_200,
                nanos: 5,
            }),
            ..UplinkEvent::default()
        };
        let json = serde_json::to_vec(&ev).unwrap();
        let up = decode_up(&json).unwrap();
        assert_eq!(up.dev_eui.address(), "0102030405060708");
        assert_eq!((up.f_cnt, up.f_port, up.dr), (9, Some(10), Some(5)));
        assert_eq!(up.data, vec![1, 2, 3]);
        assert_eq!((up.rssi, up.snr), (Some(-97.0), Some(6.2)));
        assert_eq!(
            up.received_at.as_deref(),
            Some("2025-12-01T00:00:00.000000005Z")
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_up(&body);
        }

        #[test]
        fn valid_uplinks_round_trip(eui in any::<[u8; 8]>(), f_cnt in any::<u32>(),
                port in 1u8..=223, data in proptest::collection::vec(any::<u8>(), 1..=242),
                dr in 0u8..=7, rssi in -140i32..0) {
            use base64::Engine;
            let dev_eui = LinkAddress::dev_eui_bytes(eui);
            let body = serde_json::json!({
                "deviceInfo": {"devEui": dev_eui.address().to_ascii_uppercase()},
                "fCnt": f_cnt, "fPort": port, "dr": dr,
                "data": base64::engine::general_purpose::STANDARD.encode(&data),
                "rxInfo": [{"rssi": rssi, "snr": -7.25}],
            });
            let up = decode_up(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(up.dev_eui, dev_eui);
            prop_assert_eq!((up.f_cnt, up.f_port, up.dr), (f_cnt, Some(port), Some(dr)));
            prop_assert_eq!(up.data, data);
            prop_assert_eq!((up.rssi, up.snr), (Some(f64::from(rssi)), Some(-7.25)));
        }
    }
}
