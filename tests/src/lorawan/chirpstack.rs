//! A ChirpStack v4 network server, simulated: a [`LoraNetwork`] that posts
//! every uplink to the flotta server's webhook exactly as ChirpStack's
//! HTTP integration does (`POST {url}/chirpstack?event=up`, JSON marshaler:
//! the protobuf JSON mapping with default values omitted, bytes in base64,
//! the DevEUI in hex under `deviceInfo.devEui`; the integration's
//! configured headers; at most once, no retry), and serves the device-queue
//! API the server calls through ChirpStack's REST gateway
//! (`chirpstack-rest-api`): `DELETE`/`POST`/`GET /api/devices/{devEui}/queue`
//! with `Authorization: Bearer <API token>`.
//!
//! Class A: [`LoraNetwork::uplink`] returns the downlink queued for the
//! device *when the uplink arrives* (before the integration posts it), so
//! the answer to uplink N rides on uplink N+1. Downlinks sent are counted
//! per device per UTC day.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::http::{
    HttpRequest, HttpResponse, HttpServer, Loss, day_now, eu868_modulation, eui_hex, post_json,
};
use crate::modem::lora::network::{LoraDownlink, LoraNetwork, LoraUplink};

/// How the simulated ChirpStack reaches the flotta server.
#[derive(Debug, Clone)]
pub struct ChirpstackOptions {
    /// The webhook listener's base URL (`http://127.0.0.1:port`).
    pub webhook_url: String,
    /// The integration's header (name, value) carrying the shared secret.
    pub auth_header: (String, String),
    /// The API token the REST API accepts.
    pub api_token: String,
    /// Fraction of uplinks whose event post is lost (0.0: none).
    pub loss_rate: f64,
    /// Seed of the loss decisions.
    pub seed: u64,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, VecDeque<LoraDownlink>>,
    /// (DevEUI, day) → downlinks sent in receive windows.
    sent: HashMap<(String, u64), u32>,
    posted: Vec<(u16, String)>,
    lost: u32,
    api_calls: Vec<String>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    token: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The simulated ChirpStack.
pub struct ChirpstackNetwork {
    shared: Arc<Shared>,
    options: ChirpstackOptions,
    loss: Mutex<Loss>,
    api: HttpServer,
}

impl ChirpstackNetwork {
    /// Start the REST API on 127.0.0.1.
    ///
    /// # Errors
    /// The API's listener could not bind.
    pub fn start(options: ChirpstackOptions) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            token: options.api_token.clone(),
        });
        let s = shared.clone();
        let api = HttpServer::start(move |r| api(&s, r))?;
        Ok(Self {
            loss: Mutex::new(Loss::new(options.loss_rate, options.seed)),
            shared,
            options,
            api,
        })
    }

    /// The REST API's base URL (the server's `chirpstack_api_url`).
    #[must_use]
    pub fn api_url(&self) -> String {
        self.api.url()
    }

    /// Downlinks waiting for `dev_eui`.
    #[must_use]
    pub fn queued(&self, dev_eui: [u8; 8]) -> Vec<LoraDownlink> {
        let q = self.shared.lock();
        q.queues
            .get(&eui_hex(dev_eui))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Downlinks sent to `dev_eui` today (UTC).
    #[must_use]
    pub fn downlinks_today(&self, dev_eui: [u8; 8]) -> u32 {
        let q = self.shared.lock();
        q.sent
            .get(&(eui_hex(dev_eui), day_now()))
            .copied()
            .unwrap_or(0)
    }

    /// Each event post: the webhook's status (0: no answer) and the event.
    #[must_use]
    pub fn posted(&self) -> Vec<(u16, String)> {
        self.shared.lock().posted.clone()
    }

    /// Event posts lost on purpose.
    #[must_use]
    pub fn lost(&self) -> u32 {
        self.shared.lock().lost
    }

    /// API calls received (`METHOD path`), authorised or not.
    #[must_use]
    pub fn api_calls(&self) -> Vec<String> {
        self.shared.lock().api_calls.clone()
    }

    /// The `up` event ChirpStack posts for `up` (JSON marshaler).
    #[must_use]
    pub fn up_event(up: &LoraUplink) -> Value {
        let (sf, bw) = eu868_modulation(up.dr);
        let mut ev = json!({
            "deduplicationId": format!("00000000-0000-4000-8000-{:012x}", up.f_cnt),
            "time": "2026-12-01T00:00:00.000000000+00:00",
            "deviceInfo": {
                "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "ChirpStack",
                "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "flotta",
                "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "flotta",
                "deviceName": eui_hex(up.dev_eui), "devEui": eui_hex(up.dev_eui),
            },
            "devAddr": "00189440", "adr": true,
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 4_217_106_255u64,
                "rssi": up.rssi, "snr": f64::from(up.snr_tenths_db) / 10.0, "context": "E3OWOQ==",
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"}}],
            "txInfo": {"frequency": 868_100_000, "modulation": {"lora": {
                "bandwidth": bw, "spreadingFactor": sf, "codeRate": "CR_4_5"}}},
        });
        // Default values are omitted, as the protobuf JSON mapping does.
        let mut put = |k: &str, v: Value, default: bool| {
            if !default {
                ev[k] = v;
            }
        };
        put("dr", up.dr.into(), up.dr == 0);
        put("fCnt", up.f_cnt.into(), up.f_cnt == 0);
        let port = up.f_port.unwrap_or(0);
        put("fPort", port.into(), port == 0);
        put("confirmed", up.confirmed.into(), !up.confirmed);
        put("data", STANDARD.encode(&up.data).into(), up.data.is_empty());
        ev
    }
}

impl LoraNetwork for ChirpstackNetwork {
    fn joined(&self, _dev_eui: [u8; 8]) {
        // A join event: posted as ChirpStack does, its answer irrelevant.
        let url = format!("{}/chirpstack?event=join", self.options.webhook_url);
        let _ = post_json(&url, std::slice::from_ref(&self.options.auth_header), "{}");
    }

    fn uplink(&self, up: &LoraUplink) -> Option<LoraDownlink> {
        let eui = eui_hex(up.dev_eui);
        let down = {
            let mut s = self.shared.lock();
            let down = s.queues.get_mut(&eui).and_then(VecDeque::pop_front);
            if down.is_some() {
                *s.sent.entry((eui, day_now())).or_default() += 1;
            }
            down
        };
        if self
            .loss
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lose()
        {
            self.shared.lock().lost += 1;
            return down;
        }
        let body = Self::up_event(up).to_string();
        let url = format!("{}/chirpstack?event=up", self.options.webhook_url);
        // At most once: ChirpStack logs a failed post and moves on.
        let status =
            post_json(&url, std::slice::from_ref(&self.options.auth_header), &body).unwrap_or(0);
        self.shared.lock().posted.push((status, body));
        down
    }
}

/// The REST gateway's device-queue routes.
fn api(shared: &Shared, r: &HttpRequest) -> HttpResponse {
    shared
        .lock()
        .api_calls
        .push(format!("{} {}", r.method, r.path));
    if r.headers.get("authorization") != Some(&format!("Bearer {}", shared.token)) {
        return (
            401,
            json!({"code": 16, "message": "authentication failed"}).to_string(),
        );
    }
    let Some(eui) = r
        .path
        .strip_prefix("/api/devices/")
        .and_then(|p| p.strip_suffix("/queue"))
        .filter(|e| e.len() == 16 && e.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
    else {
        return (404, json!({"code": 5, "message": "not found"}).to_string());
    };
    let mut s = shared.lock();
    match r.method.as_str() {
        "DELETE" => {
            s.queues.remove(&eui);
            (200, "{}".into())
        }
        "GET" => {
            let items: Vec<Value> = s
                .queues
                .get(&eui)
                .into_iter()
                .flatten()
                .map(
                    |d| json!({"devEui": eui, "fPort": d.f_port, "data": STANDARD.encode(&d.data)}),
                )
                .collect();
            (
                200,
                json!({"totalCount": items.len(), "result": items}).to_string(),
            )
        }
        "POST" => {
            let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
                return (
                    400,
                    json!({"code": 3, "message": "invalid JSON"}).to_string(),
                );
            };
            let item = &v["queueItem"];
            let port = item["fPort"].as_u64().and_then(|p| u8::try_from(p).ok());
            let data = item["data"].as_str().and_then(|d| STANDARD.decode(d).ok());
            let (Some(f_port @ 1..), Some(data)) = (port, data) else {
                return (
                    400,
                    json!({"code": 3, "message": "invalid queue item"}).to_string(),
                );
            };
            if v["flushQueue"].as_bool() == Some(true) {
                s.queues.remove(&eui);
            }
            s.queues.entry(eui).or_default().push_back(LoraDownlink {
                f_port,
                data,
                confirmed: item["confirmed"].as_bool().unwrap_or(false),
            });
            s.next_id += 1;
            (
                200,
                json!({"id": format!("00000000-0000-4000-8000-{:012x}", s.next_id)}).to_string(),
            )
        }
        _ => (405, "{}".into()),
    }
}
