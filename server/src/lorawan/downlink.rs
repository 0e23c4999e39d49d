//! Downlinks: a frame's sealed answer sent back to the device through its
//! network server, for the device's next class A receive windows.
//!
//! [`DownlinkQueue`] (`queue.rs`) keeps only the **newest** answer per
//! device, and each delivery *replaces* what the network server still
//! holds for the device:
//! - ChirpStack v4, `chirpstack_api_protocol = "grpc"` (the default): its
//!   gRPC API, `api.DeviceService/FlushQueue` then `api.DeviceService/Enqueue`
//!   (`DeviceQueueItem { dev_eui, confirmed: false, f_port, data }`), with
//!   the `chirpstack_api` crate's tonic client and request types,
//!   `authorization: Bearer <API token>` metadata;
//! - ChirpStack v4, `chirpstack_api_protocol = "rest"`: the same two calls
//!   through its REST gateway (`chirpstack-rest-api`):
//!   `DELETE {url}/api/devices/{devEui}/queue`, then
//!   `POST {url}/api/devices/{devEui}/queue` with
//!   `{"queueItem":{"devEui","confirmed":false,"fPort","data":<base64>}}`
//!   (the crate's API types have no serde, so this body is written here),
//!   `Authorization: Bearer <API token>`;
//! - The Things Stack v3: `POST {url}/api/v3/as/applications/{app}/webhooks/{webhook}/devices/{device}/down/replace`
//!   with `{"downlinks":[{"f_port","frm_payload":<base64>,"priority":"NORMAL"}]}`,
//!   `Authorization: Bearer <API key>`.
//!
//! Where to send and with which key comes from the configuration only,
//! never from a webhook request. One blocking worker thread
//! ([`DownlinkWorker::run`]) delivers with a deadline per request and
//! retries network errors, 429 and 5xx (gRPC: `UNAVAILABLE`,
//! `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `ABORTED`, `INTERNAL`,
//! `UNKNOWN`, `CANCELLED`) with exponential back-off; other answers are
//! final. Outcomes: `flotta_lorawan_downlinks_total`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chirpstack_api::api::device_service_client::DeviceServiceClient;
use chirpstack_api::api::{
    DeviceQueueItem, EnqueueDeviceQueueItemRequest, FlushDeviceQueueRequest,
};
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::clock::Clock;
use crate::frames::Answered;
use crate::metrics::Metrics;
use crate::store::Store;

pub use super::queue::DownlinkQueue;

/// The network servers we integrate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// ChirpStack v4.
    ChirpStack,
    /// The Things Stack v3.
    Tts,
}

impl Network {
    /// The `network` label and the `last_link` detail.
    pub fn label(self) -> &'static str {
        match self {
            Network::ChirpStack => "chirpstack",
            Network::Tts => "tts",
        }
    }
}

/// Whether a frame's answer is worth a downlink: only when the device
/// asked for it (its status's ack-wanted flag, `proto/FRAMES.md` "Answers
/// that come later"). The device asks on a window's last frame and once per
/// 16 frames in flight, within its fair-use downlink budget (TTN allows ten
/// a day); configuration and keys ride on those answers. A duplicate of an
/// asked frame is answered again (the first answer may have been lost).
pub fn downlink_wanted(answered: &Answered) -> bool {
    answered.wanted
}

/// How the server reaches ChirpStack's API (`chirpstack_api_protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChirpstackProtocol {
    /// ChirpStack's own gRPC API (`chirpstack_api_url`: ChirpStack itself, port 8080).
    #[default]
    Grpc,
    /// The REST gateway (`chirpstack-rest-api`, port 8090) in front of it.
    Rest,
}

/// ChirpStack's API.
#[derive(Clone, PartialEq, Eq)]
pub struct ChirpstackApi {
    /// `chirpstack_api_url`, without a trailing `/`.
    pub url: String,
    /// The API token (`chirpstack_api_token_file`).
    pub token: String,
    /// gRPC or the REST gateway (`chirpstack_api_protocol`).
    pub protocol: ChirpstackProtocol,
}

/// The Things Stack's Application Server.
#[derive(Clone, PartialEq, Eq)]
pub struct TtsApi {
    /// `tts_api_url`, without a trailing `/`.
    pub url: String,
    /// `tts_application_id`.
    pub application_id: String,
    /// `tts_webhook_id`.
    pub webhook_id: String,
    /// The API key (`tts_api_key_file`).
    pub api_key: String,
}

impl std::fmt::Debug for ChirpstackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChirpstackApi")
            .field("url", &self.url)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TtsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsApi")
            .field("url", &self.url)
            .field("application_id", &self.application_id)
            .field("webhook_id", &self.webhook_id)
            .finish_non_exhaustive()
    }
}

/// Where and how downlinks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownlinkSettings {
    /// ChirpStack's API, when that integration is on.
    pub chirpstack: Option<ChirpstackApi>,
    /// TTS's API, when that integration is on.
    pub tts: Option<TtsApi>,
    /// FPort of the answers (`lorawan_fport`).
    pub f_port: u8,
    /// Deadline of one request (`lorawan_downlink_timeout_seconds`).
    pub timeout: Duration,
    /// First retry delay; doubled each attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Attempts before giving up on one answer.
    pub max_attempts: u32,
    /// Devices with an answer waiting at most.
    pub queue_devices: usize,
}

/// Whom a downlink is for, in the network server's terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DownlinkTarget {
    /// ChirpStack names devices by DevEUI (lower-case hex).
    ChirpStack {
        /// The DevEUI.
        dev_eui: String,
    },
    /// TTS names devices by their end device id within the application.
    Tts {
        /// `end_device_ids.device_id` (checked: `[a-z0-9-]`, 2..=36).
        device_id: String,
    },
}

impl DownlinkTarget {
    /// The network.
    pub fn network(&self) -> Network {
        match self {
            DownlinkTarget::ChirpStack { .. } => Network::ChirpStack,
            DownlinkTarget::Tts { .. } => Network::Tts,
        }
    }
}

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The network server queued it.
    Ok,
    /// Refused for good (4xx other than 429, integration off).
    Final(String),
    /// Network error, 429 or 5xx: try again.
    Transient(String),
}

/// A reply's status as a delivery.
pub fn classify(status: u16) -> Delivery {
    match status {
        200..=299 => Delivery::Ok,
        429 | 500..=599 => Delivery::Transient(format!("HTTP {status}")),
        _ => Delivery::Final(format!("HTTP {status}")),
    }
}

/// A gRPC status as a delivery: codes that say "later" are retried.
pub fn classify_grpc(status: &tonic::Status) -> Delivery {
    use tonic::Code;
    let why = format!("gRPC {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Ok => Delivery::Ok,
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Internal
        | Code::Unknown
        | Code::Cancelled => Delivery::Transient(why),
        _ => Delivery::Final(why),
    }
}

/// ChirpStack's gRPC `DeviceService`, driven from the blocking worker.
struct ChirpstackGrpc {
    /// The runtime the calls run on: the server's (the worker runs on its
    /// blocking pool), or the worker's own when there is none.
    handle: tokio::runtime::Handle,
    client: DeviceServiceClient<Channel>,
    bearer: MetadataValue<Ascii>,
    /// Last: dropped after the client whose connection task it runs.
    _own: Option<tokio::runtime::Runtime>,
}

impl ChirpstackGrpc {
    /// A lazily connecting client (no I/O until the first call).
    fn new(api: &ChirpstackApi, timeout: Duration) -> Result<Self, String> {
        let (handle, own) = match tokio::runtime::Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("a runtime for gRPC: {e}"))?;
                (rt.handle().clone(), Some(rt))
            }
        };
        let mut endpoint = Endpoint::from_shared(api.url.clone())
            .map_err(|e| format!("chirpstack_api_url: {e}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if api.url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|e| format!("chirpstack_api_url: TLS: {e}"))?;
        }
        // The channel spawns its connection task: inside the runtime.
        let channel = {
            let _entered = handle.enter();
            endpoint.connect_lazy()
        };
        let bearer = format!("Bearer {}", api.token)
            .parse()
            .map_err(|_| "the API token is not a valid header value".to_owned())?;
        Ok(Self {
            handle,
            client: DeviceServiceClient::new(channel),
            bearer,
            _own: own,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.metadata_mut()
            .insert("authorization", self.bearer.clone());
        r
    }

    /// FlushQueue, then Enqueue.
    fn replace(&self, dev_eui: &str, f_port: u8, data: &[u8]) -> Delivery {
        let mut client = self.client.clone();
        let flush = self.request(FlushDeviceQueueRequest {
            dev_eui: dev_eui.to_owned(),
        });
        let enqueue = self.request(EnqueueDeviceQueueItemRequest {
            queue_item: Some(DeviceQueueItem {
                dev_eui: dev_eui.to_owned(),
                confirmed: false,
                f_port: u32::from(f_port),
                data: data.to_vec(),
                ..DeviceQueueItem::default()
            }),
            flush_queue: false,
        });
        self.handle.block_on(async move {
            if let Err(s) = client.flush_queue(flush).await {
                return classify_grpc(&s);
            }
            match client.enqueue(enqueue).await {
                Ok(_) => Delivery::Ok,
                Err(s) => classify_grpc(&s),
            }
        })
    }
}

/// The delivering thread.
#[derive(Debug)]
pub struct DownlinkWorker {
    /// The queue it drains.
    pub queue: Arc<DownlinkQueue>,
    /// Where and how.
    pub settings: DownlinkSettings,
    /// Where accepted downlinks are counted.
    pub store: Arc<dyn Store>,
    /// The counting day's clock.
    pub clock: Arc<dyn Clock>,
    /// Outcomes.
    pub metrics: Arc<Metrics>,
}

impl DownlinkWorker {
    /// Deliver until the queue is closed (blocking: run it on its own
    /// thread, or a tokio runtime's blocking pool, whose runtime then
    /// carries the gRPC calls).
    pub fn run(self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.settings.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let grpc = match &self.settings.chirpstack {
            Some(api) if api.protocol == ChirpstackProtocol::Grpc => {
                Some(ChirpstackGrpc::new(api, self.settings.timeout))
            }
            _ => None,
        };
        while let Some((target, mut p)) = self.queue.next() {
            let network = target.network().label();
            match self.send(&agent, grpc.as_ref(), &target, &p.data) {
                Delivery::Ok => {
                    tracing::debug!(?target, device = %p.device, bytes = p.data.len(), "downlink queued by the network server");
                    self.metrics.count_lora_downlink(network, "ok");
                    let day = crate::rock7::utc_day(self.clock.now_ms());
                    if let Err(e) = self.store.add_lorawan_downlink(&p.device, &day) {
                        tracing::warn!(device = %p.device, "counting a downlink: {e}");
                    }
                }
                Delivery::Final(why) => {
                    tracing::warn!(?target, device = %p.device, "{network} refused the downlink: {why}");
                    self.metrics.count_lora_downlink(network, "failed");
                }
                Delivery::Transient(why) => {
                    p.attempts += 1;
                    if p.attempts >= self.settings.max_attempts {
                        tracing::warn!(?target, device = %p.device, attempts = p.attempts, "downlink given up: {why}");
                        self.metrics.count_lora_downlink(network, "gave_up");
                        continue;
                    }
                    tracing::debug!(?target, attempts = p.attempts, "downlink to retry: {why}");
                    self.metrics.count_lora_downlink(network, "retry");
                    p.due = Instant::now() + self.backoff(p.attempts);
                    self.queue.retry(target, p);
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        self.settings
            .backoff_initial
            .saturating_mul(factor)
            .min(self.settings.backoff_max)
    }

    fn send(
        &self,
        agent: &ureq::Agent,
        grpc: Option<&Result<ChirpstackGrpc, String>>,
        target: &DownlinkTarget,
        data: &[u8],
    ) -> Delivery {
        let f_port = self.settings.f_port;
        let b64 = STANDARD.encode(data);
        match target {
            DownlinkTarget::ChirpStack { dev_eui } => {
                let Some(api) = &self.settings.chirpstack else {
                    return Delivery::Final("the ChirpStack integration is off".into());
                };
                match grpc {
                    Some(Ok(grpc)) => return grpc.replace(dev_eui, f_port, data),
                    Some(Err(e)) => return Delivery::Final(e.clone()),
                    None => {}
                }
                let url = format!("{}/api/devices/{dev_eui}/queue", api.url);
                let bearer = format!("Bearer {}", api.token);
                let flushed = agent.delete(&url).header("Authorization", &bearer).call();
                match flushed.map(|r| classify(r.status().as_u16())) {
                    Ok(Delivery::Ok) => {}
                    Ok(other) => return other,
                    Err(e) => return Delivery::Transient(e.to_string()),
                }
                let body = serde_json::json!({"queueItem": {
                    "devEui": dev_eui, "confirmed": false, "fPort": f_port, "data": b64,
                }});
                post(agent, &url, &bearer, &body)
            }
            DownlinkTarget::Tts { device_id } => {
                let Some(api) = &self.settings.tts else {
                    return Delivery::Final("the TTS integration is off".into());
                };
                let url = format!(
                    "{}/api/v3/as/applications/{}/webhooks/{}/devices/{device_id}/down/replace",
                    api.url, api.application_id, api.webhook_id
                );
                let body = serde_json::json!({"downlinks": [{
                    "f_port": f_port, "frm_payload": b64, "priority": "NORMAL",
                }]});
                post(agent, &url, &format!("Bearer {}", api.api_key), &body)
            }
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, bearer: &str, body: &serde_json::Value) -> Delivery {
    let sent = agent
        .post(url)
        .header("Authorization", bearer)
        .header("Content-Type", "application/json")
        .send(body.to_string());
    // Errors carry the URL, never the header (no key in logs).
    match sent {
        Ok(r) => classify(r.status().as_u16()),
        Err(e) => Delivery::Transient(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify() {
        assert_eq!(classify(200), Delivery::Ok);
        assert!(matches!(classify(429), Delivery::Transient(_)));
        assert!(matches!(classify(503), Delivery::Transient(_)));
        assert!(matches!(classify(404), Delivery::Final(_)));
        assert!(matches!(classify(401), Delivery::Final(_)));
        let grpc = |code| classify_grpc(&tonic::Status::new(code, "x"));
        assert!(matches!(
            grpc(tonic::Code::Unavailable),
            Delivery::Transient(_)
        ));
        assert!(matches!(
            grpc(tonic::Code::DeadlineExceeded),
            Delivery::Transient(_)
        ));
        assert!(matches!(
            grpc(tonic::Code::Unauthenticated),
            Delivery::Final(_)
        ));
        assert!(matches!(grpc(tonic::Code::NotFound), Delivery::Final(_)));
    }
}
