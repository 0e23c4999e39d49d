//! A ChirpStack v4 network server, simulated: a [`LoraNetwork`] that posts
//! every uplink to the flotta server's webhook exactly as ChirpStack's
//! HTTP integration does (`POST {url}/chirpstack?event=up`, JSON marshaler:
//! the protobuf JSON mapping with default values omitted, bytes in base64,
//! the DevEUI in hex under `deviceInfo.devEui`; the integration's
//! configured headers; at most once, no retry), and serves the device-queue
//! API the server calls, both ways ChirpStack offers it, with
//! `authorization: Bearer <API token>`:
//! - gRPC ([`ChirpstackNetwork::api_url`]): `api.DeviceService` from the
//!   `chirpstack_api` crate (tonic), `Enqueue`, `FlushQueue` and `GetQueue`
//!   served, every other method `UNIMPLEMENTED`;
//! - the REST gateway (`chirpstack-rest-api`, [`ChirpstackNetwork::rest_api_url`]):
//!   `DELETE`/`POST`/`GET /api/devices/{devEui}/queue`.
//!
//! Class A: [`LoraNetwork::uplink`] returns the downlink queued for the
//! device *when the uplink arrives* (before the integration posts it), so
//! the answer to uplink N rides on uplink N+1. Downlinks sent are counted
//! per device per UTC day.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chirpstack_api::api::{self, device_service_server::DeviceService};
use chirpstack_api::tonic::{self, Request, Response, Status};
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
    /// The API token the gRPC and REST APIs accept.
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
    grpc: GrpcServer,
    rest: HttpServer,
}

impl ChirpstackNetwork {
    /// Start the gRPC and REST APIs on 127.0.0.1.
    ///
    /// # Errors
    /// A listener could not bind, or the gRPC server's runtime not start.
    pub fn start(options: ChirpstackOptions) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            token: options.api_token.clone(),
        });
        let s = shared.clone();
        let rest = HttpServer::start(move |r| rest_api(&s, r))?;
        let grpc = GrpcServer::start(GrpcApi(shared.clone()))?;
        Ok(Self {
            loss: Mutex::new(Loss::new(options.loss_rate, options.seed)),
            shared,
            options,
            grpc,
            rest,
        })
    }

    /// The gRPC API's URL (the server's `chirpstack_api_url` with
    /// `chirpstack_api_protocol = "grpc"`, the default).
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://{}", self.grpc.addr)
    }

    /// The REST gateway's base URL (with `chirpstack_api_protocol = "rest"`).
    #[must_use]
    pub fn rest_api_url(&self) -> String {
        self.rest.url()
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

    /// API calls received, authorised or not: `METHOD path` (REST) or
    /// `Method devEui` (gRPC, e.g. `FlushQueue 70b3d57ed005a1b2`).
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
fn rest_api(shared: &Shared, r: &HttpRequest) -> HttpResponse {
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

/// The gRPC server: a tonic server on its own thread and runtime, stopped
/// (and joined) on drop.
struct GrpcServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GrpcServer {
    fn start(service: GrpcApi) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(api::device_service_server::DeviceServiceServer::new(
                        service,
                    ))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `api.DeviceService`, as much of it as the server uses.
struct GrpcApi(Arc<Shared>);

impl GrpcApi {
    /// Record the call; the token checked as ChirpStack does (`UNAUTHENTICATED`).
    fn call<T>(&self, method: &str, dev_eui: &str, r: &Request<T>) -> Result<(), Status> {
        self.0.lock().api_calls.push(format!("{method} {dev_eui}"));
        let bearer = format!("Bearer {}", self.0.token);
        match r.metadata().get("authorization").map(|v| v.to_str()) {
            Some(Ok(v)) if v == bearer => Ok(()),
            _ => Err(Status::unauthenticated("authentication failed")),
        }
    }
}

/// A DevEUI as ChirpStack parses it (16 hex digits), lower case.
fn eui_of(dev_eui: &str) -> Result<String, Status> {
    if dev_eui.len() == 16 && dev_eui.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(dev_eui.to_ascii_lowercase())
    } else {
        Err(Status::invalid_argument("invalid DevEUI"))
    }
}

/// The served methods, and `UNIMPLEMENTED` for the rest (the generated
/// trait has no defaults; one macro writes them inside the
/// `async_trait` impl).
macro_rules! device_service {
    ($($method:ident($request:ident) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl DeviceService for GrpcApi {
            async fn flush_queue(
                &self,
                r: Request<api::FlushDeviceQueueRequest>,
            ) -> Result<Response<()>, Status> {
                self.call("FlushQueue", &r.get_ref().dev_eui, &r)?;
                let eui = eui_of(&r.get_ref().dev_eui)?;
                self.0.lock().queues.remove(&eui);
                Ok(Response::new(()))
            }

            async fn enqueue(
                &self,
                r: Request<api::EnqueueDeviceQueueItemRequest>,
            ) -> Result<Response<api::EnqueueDeviceQueueItemResponse>, Status> {
                let item = r.get_ref().queue_item.clone().unwrap_or_default();
                self.call("Enqueue", &item.dev_eui, &r)?;
                let eui = eui_of(&item.dev_eui)?;
                let Ok(f_port @ 1..) = u8::try_from(item.f_port) else {
                    return Err(Status::invalid_argument("invalid FPort"));
                };
                let mut s = self.0.lock();
                if r.get_ref().flush_queue {
                    s.queues.remove(&eui);
                }
                s.queues.entry(eui).or_default().push_back(LoraDownlink {
                    f_port,
                    data: item.data,
                    confirmed: item.confirmed,
                });
                s.next_id += 1;
                Ok(Response::new(api::EnqueueDeviceQueueItemResponse {
                    id: format!("00000000-0000-4000-8000-{:012x}", s.next_id),
                }))
            }

            async fn get_queue(
                &self,
                r: Request<api::GetDeviceQueueItemsRequest>,
            ) -> Result<Response<api::GetDeviceQueueItemsResponse>, Status> {
                self.call("GetQueue", &r.get_ref().dev_eui, &r)?;
                let eui = eui_of(&r.get_ref().dev_eui)?;
                let s = self.0.lock();
                let result: Vec<api::DeviceQueueItem> = s
                    .queues
                    .get(&eui)
                    .into_iter()
                    .flatten()
                    .map(|d| api::DeviceQueueItem {
                        dev_eui: eui.clone(),
                        confirmed: d.confirmed,
                        f_port: u32::from(d.f_port),
                        data: d.data.clone(),
                        ..api::DeviceQueueItem::default()
                    })
                    .collect();
                Ok(Response::new(api::GetDeviceQueueItemsResponse {
                    total_count: u32::try_from(result.len()).unwrap_or(u32::MAX),
                    result,
                }))
            }

            $(
                async fn $method(
                    &self,
                    _: Request<api::$request>,
                ) -> Result<Response<$response>, Status> {
                    Err(Status::unimplemented(concat!(
                        "not simulated: ",
                        stringify!($method)
                    )))
                }
            )*
        }
    };
}

device_service! {
    create(CreateDeviceRequest) -> ();
    get(GetDeviceRequest) -> api::GetDeviceResponse;
    update(UpdateDeviceRequest) -> ();
    delete(DeleteDeviceRequest) -> ();
    list(ListDevicesRequest) -> api::ListDevicesResponse;
    create_keys(CreateDeviceKeysRequest) -> ();
    get_keys(GetDeviceKeysRequest) -> api::GetDeviceKeysResponse;
    update_keys(UpdateDeviceKeysRequest) -> ();
    delete_keys(DeleteDeviceKeysRequest) -> ();
    flush_dev_nonces(FlushDevNoncesRequest) -> ();
    activate(ActivateDeviceRequest) -> ();
    deactivate(DeactivateDeviceRequest) -> ();
    get_activation(GetDeviceActivationRequest) -> api::GetDeviceActivationResponse;
    get_random_dev_addr(GetRandomDevAddrRequest) -> api::GetRandomDevAddrResponse;
    get_metrics(GetDeviceMetricsRequest) -> api::GetDeviceMetricsResponse;
    get_link_metrics(GetDeviceLinkMetricsRequest) -> api::GetDeviceLinkMetricsResponse;
    get_next_f_cnt_down(GetDeviceNextFCntDownRequest) -> api::GetDeviceNextFCntDownResponse;
}
