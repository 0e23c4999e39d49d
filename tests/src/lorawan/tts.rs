//! The Things Stack v3, simulated: a [`LoraNetwork`] that posts every
//! uplink to the flotta server's webhook exactly as a TTS webhook does
//! (`POST {url}/tts/uplink`, the `uplink_message` JSON with empty, zero and
//! false fields omitted, `frm_payload` in base64; the headers TTS adds:
//! `X-Downlink-Apikey`, `X-Downlink-Push`, `X-Downlink-Replace`,
//! `X-Tts-Domain`, `User-Agent`, and the webhook's additional headers; at
//! most once), and serves the Application Server's webhook downlink queue
//! API the server calls: `POST /api/v3/as/applications/{app}/webhooks/{webhook}/devices/{device}/down/{push|replace}`
//! with `Authorization: Bearer <API key>`.
//!
//! Class A as in [`super::chirpstack`]: the downlink returned is the one
//! queued when the uplink arrived. Downlinks sent are counted per device
//! per UTC day (TTN's fair use allows ten).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::http::{
    HttpRequest, HttpResponse, HttpServer, Loss, day_now, eu868_modulation, eui_hex, post_json,
};
use crate::modem::lora::network::{LoraDownlink, LoraNetwork, LoraUplink};

/// How the simulated TTS reaches the flotta server.
#[derive(Debug, Clone)]
pub struct TtsOptions {
    /// The webhook listener's base URL (`http://127.0.0.1:port`).
    pub webhook_url: String,
    /// The webhook's additional header (name, value) carrying the secret.
    pub auth_header: (String, String),
    /// The application id.
    pub application_id: String,
    /// The webhook id.
    pub webhook_id: String,
    /// The API key the downlink API accepts.
    pub api_key: String,
    /// The webhook's "Downlink API key" TTS sends in `X-Downlink-Apikey`
    /// (the flotta server must not use it).
    pub downlink_api_key_header: String,
    /// Fraction of uplinks whose post is lost (0.0: none).
    pub loss_rate: f64,
    /// Seed of the loss decisions.
    pub seed: u64,
}

#[derive(Default)]
struct State {
    /// device id → DevEUI, and the queues by device id.
    devices: HashMap<String, [u8; 8]>,
    queues: HashMap<String, VecDeque<LoraDownlink>>,
    sent: HashMap<(String, u64), u32>,
    posted: Vec<(u16, String)>,
    lost: u32,
    api_calls: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    prefix: String,
    key: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The simulated The Things Stack.
pub struct TtsNetwork {
    shared: Arc<Shared>,
    options: TtsOptions,
    loss: Mutex<Loss>,
    api: HttpServer,
}

impl TtsNetwork {
    /// Start the downlink API on 127.0.0.1.
    ///
    /// # Errors
    /// The API's listener could not bind.
    pub fn start(options: TtsOptions) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            prefix: format!(
                "/api/v3/as/applications/{}/webhooks/{}/devices/",
                options.application_id, options.webhook_id
            ),
            key: options.api_key.clone(),
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

    /// The API's base URL (the server's `tts_api_url`).
    #[must_use]
    pub fn api_url(&self) -> String {
        self.api.url()
    }

    /// Register an end device: its id in the application and its DevEUI.
    pub fn add_device(&self, device_id: &str, dev_eui: [u8; 8]) {
        self.shared
            .lock()
            .devices
            .insert(device_id.to_owned(), dev_eui);
    }

    fn device_id(&self, dev_eui: [u8; 8]) -> Option<String> {
        let s = self.shared.lock();
        s.devices
            .iter()
            .find(|(_, e)| **e == dev_eui)
            .map(|(id, _)| id.clone())
    }

    /// Downlinks waiting for `device_id`.
    #[must_use]
    pub fn queued(&self, device_id: &str) -> Vec<LoraDownlink> {
        let s = self.shared.lock();
        s.queues
            .get(device_id)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Downlinks sent to `device_id` today (UTC).
    #[must_use]
    pub fn downlinks_today(&self, device_id: &str) -> u32 {
        let s = self.shared.lock();
        s.sent
            .get(&(device_id.to_owned(), day_now()))
            .copied()
            .unwrap_or(0)
    }

    /// Each post: the webhook's status (0: no answer) and the body.
    #[must_use]
    pub fn posted(&self) -> Vec<(u16, String)> {
        self.shared.lock().posted.clone()
    }

    /// Posts lost on purpose.
    #[must_use]
    pub fn lost(&self) -> u32 {
        self.shared.lock().lost
    }

    /// API calls received (`METHOD path`), authorised or not.
    #[must_use]
    pub fn api_calls(&self) -> Vec<String> {
        self.shared.lock().api_calls.clone()
    }

    /// The uplink message TTS posts for `up` from `device_id`.
    #[must_use]
    pub fn uplink_message(&self, device_id: &str, up: &LoraUplink) -> Value {
        let (sf, bw) = eu868_modulation(up.dr);
        let mut m = json!({
            "session_key_id": "AXBSH1Pk6Z0G166BVkBlIA==",
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1", "eui": "0016C001F153A14C"},
                "rssi": up.rssi, "channel_rssi": up.rssi, "snr": f64::from(up.snr_tenths_db) / 10.0,
                "uplink_token": "ChIKEAoOZ3R3MQ=="}],
            "settings": {"data_rate": {"lora": {"bandwidth": bw, "spreading_factor": sf,
                "coding_rate": "4/5"}}, "frequency": "868100000"},
            "received_at": "2026-12-01T00:00:00.000Z",
        });
        let port = up.f_port.unwrap_or(0);
        if port != 0 {
            m["f_port"] = port.into();
        }
        if up.f_cnt != 0 {
            m["f_cnt"] = up.f_cnt.into();
        }
        if !up.data.is_empty() {
            m["frm_payload"] = STANDARD.encode(&up.data).into();
        }
        if up.confirmed {
            m["confirmed"] = true.into();
        }
        json!({
            "end_device_ids": {"device_id": device_id,
                "application_ids": {"application_id": self.options.application_id},
                "dev_eui": eui_hex(up.dev_eui).to_ascii_uppercase(), "join_eui": "0000000000000000",
                "dev_addr": "260B1234"},
            "correlation_ids": [format!("as:up:{:026}", up.f_cnt)],
            "received_at": "2026-12-01T00:00:00.000Z",
            "uplink_message": m,
        })
    }
}

impl LoraNetwork for TtsNetwork {
    fn joined(&self, _dev_eui: [u8; 8]) {}

    fn uplink(&self, up: &LoraUplink) -> Option<LoraDownlink> {
        let device_id = self.device_id(up.dev_eui)?;
        let down = {
            let mut s = self.shared.lock();
            let down = s.queues.get_mut(&device_id).and_then(VecDeque::pop_front);
            if down.is_some() {
                *s.sent.entry((device_id.clone(), day_now())).or_default() += 1;
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
        let body = self.uplink_message(&device_id, up).to_string();
        let base = format!("{}{}{device_id}/down", self.api_url(), self.shared.prefix);
        let headers = [
            self.options.auth_header.clone(),
            (
                "X-Downlink-Apikey".into(),
                self.options.downlink_api_key_header.clone(),
            ),
            ("X-Downlink-Push".into(), format!("{base}/push")),
            ("X-Downlink-Replace".into(), format!("{base}/replace")),
            ("X-Tts-Domain".into(), "eu1.cloud.thethings.network".into()),
            ("User-Agent".into(), "TheThingsStack/3.34.0".into()),
        ];
        let url = format!("{}/tts/uplink", self.options.webhook_url);
        let status = post_json(&url, &headers, &body).unwrap_or(0);
        self.shared.lock().posted.push((status, body));
        down
    }
}

/// The webhook downlink queue routes.
fn api(shared: &Shared, r: &HttpRequest) -> HttpResponse {
    shared
        .lock()
        .api_calls
        .push(format!("{} {}", r.method, r.path));
    let error = |status: u16, message: &str| {
        (
            status,
            json!({"code": status, "message": message}).to_string(),
        )
    };
    if r.headers.get("authorization") != Some(&format!("Bearer {}", shared.key)) {
        return error(401, "unauthenticated");
    }
    let Some((device_id, op)) = r
        .path
        .strip_prefix(shared.prefix.as_str())
        .and_then(|p| p.split_once("/down/"))
    else {
        return error(404, "not found");
    };
    if r.method != "POST" || !matches!(op, "push" | "replace") {
        return error(404, "not found");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        return error(400, "invalid JSON");
    };
    let Some(list) = v["downlinks"].as_array() else {
        return error(400, "no downlinks");
    };
    let mut items = Vec::new();
    for d in list {
        let port = d["f_port"].as_u64().and_then(|p| u8::try_from(p).ok());
        let data = d["frm_payload"]
            .as_str()
            .and_then(|p| STANDARD.decode(p).ok());
        let (Some(f_port @ 1..), Some(data)) = (port, data) else {
            return error(400, "invalid downlink");
        };
        items.push(LoraDownlink {
            f_port,
            data,
            confirmed: d["confirmed"].as_bool().unwrap_or(false),
        });
    }
    let mut s = shared.lock();
    if !s.devices.contains_key(device_id) {
        return error(404, "end device not found");
    }
    let queue = s.queues.entry(device_id.to_owned()).or_default();
    if op == "replace" {
        queue.clear();
    }
    queue.extend(items);
    (200, "{}".into())
}
