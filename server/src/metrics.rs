//! Prometheus metrics served on the admin listener's `/metrics`: API
//! requests by route and status, records and batches received, devices by
//! presence, store call latency, connections open and refused by
//! listener and client class, UDP datagrams and sealed frames, webhook
//! requests and Rock7 MT deliveries.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `flotta_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Matched route template, e.g. `/api/flotta-management/v1/batch/{device_id}`.
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels naming a record class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    /// `heartbeat`, `log` or `event`.
    pub class: String,
}

/// Labels naming a presence.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PresenceLabels {
    /// `online`, `offline` or `unknown`.
    pub presence: String,
}

/// Labels naming a kind of controller pass.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    /// `full` or `incremental`.
    pub pass: String,
}

/// Labels naming a store operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// The `Store` method.
    pub op: String,
}

/// Labels of `flotta_tls_handshakes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandshakeLabels {
    /// `full`, `resumed` or `failed` (refused, timed out, or no client certificate).
    pub kind: String,
}

/// Labels of `flotta_connections`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `api` or `admin`.
    pub listener: String,
    /// `device`, `registration`, `other` or `admin`.
    pub class: String,
}

/// Labels of `flotta_connections_refused_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `api` or `admin`.
    pub listener: String,
    /// `device`, `registration`, `other` or `admin`.
    pub class: String,
    /// `listener_full`, `class_full` or `client_full`.
    pub reason: String,
}

/// Labels of `flotta_udp_datagrams_total` and `flotta_udp_bytes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `in` (received) or `out` (sent).
    pub direction: String,
}

/// Labels of `flotta_frames_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameResultLabels {
    /// `stored`, `duplicate`, `unknown_key`, `bad_tag`, `epoch_mismatch`,
    /// `too_old`, `malformed`, `rate_limited`, `overloaded`, and on
    /// address-bound links `unbound` and `wrong_device`.
    pub result: String,
}

/// Labels of `flotta_webhook_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The route, e.g. `/rock7/mo`.
    pub route: String,
    /// `accepted`, `unauthorized`, `forbidden`, `bad_request`, `too_large`,
    /// `timeout`, `not_handled` (the server failed: retried by the sender).
    pub result: String,
}

/// Labels of `flotta_sbd_mt_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MtResultLabels {
    /// `ok`, `failed` (Rock7 said FAILED), `too_long` (FAILED,15),
    /// `retry` (network error or 5xx: tried again), `gave_up`, `replaced`
    /// (a newer answer for the IMEI took its place), `unchanged` (the same
    /// bytes were delivered already), `queue_full`.
    pub result: String,
}

/// Labels of `flotta_lorawan_uplinks_total` and
/// `flotta_lorawan_downlinks_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoraLabels {
    /// `chirpstack` or `tts`.
    pub network: String,
    /// What became of it (see the metrics' help).
    pub result: String,
}

/// Labels of `flotta_kubernetes_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeLabels {
    /// `create`, `patch`, `status`, `delete` or `get`.
    pub verb: String,
    /// `ok`, `conflict`, `not_found`, `refused` (other 4xx), `retry` (5xx,
    /// 429, timeouts, connection errors).
    pub result: String,
}

/// Labels of rows deleted by retention.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// `records` or `json_events`.
    pub table: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// API requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Records received in batches, by class (duplicates included).
    pub records: Family<ClassLabels, Counter>,
    /// Batches stored.
    pub batches: Counter,
    /// Approved and pending devices by presence, as of the last controller pass.
    pub devices: Family<PresenceLabels, Gauge>,
    /// Store call latency in seconds, by operation.
    pub store_latency: Family<OpLabels, Histogram>,
    /// TLS handshakes on the API listener, by kind.
    pub tls_handshakes: Family<HandshakeLabels, Counter>,
    /// Connections admitted and still open, by listener and class.
    pub connections: Family<ConnectionLabels, Gauge>,
    /// Connections refused after the handshake, by listener, class and reason.
    pub connections_refused: Family<RefusalLabels, Counter>,
    /// UDP datagrams received and sent.
    pub udp_datagrams: Family<DirectionLabels, Counter>,
    /// UDP payload bytes received and sent.
    pub udp_bytes: Family<DirectionLabels, Counter>,
    /// Sealed frames by what became of them.
    pub frames: Family<FrameResultLabels, Counter>,
    /// Webhook requests by route and result.
    pub webhook_requests: Family<WebhookLabels, Counter>,
    /// Rock7 MT deliveries by result.
    pub sbd_mt: Family<MtResultLabels, Counter>,
    /// LoRaWAN network-server events and uplinks by network and result.
    pub lorawan_uplinks: Family<LoraLabels, Counter>,
    /// LoRaWAN downlink deliveries by network and result.
    pub lorawan_downlinks: Family<LoraLabels, Counter>,
    /// Kubernetes API writes (and reads outside the watches) by verb and result.
    pub kube_requests: Family<KubeLabels, Counter>,
    /// Status writes waiting for the Kubernetes rate limit.
    pub kube_status_pending: Gauge,
    /// 1 while this replica leads (runs controller passes), else 0.
    pub leader: Gauge,
    /// Controller pass duration in seconds, full or incremental.
    pub controller_pass: Family<PassLabels, Histogram>,
    /// Devices looked at by controller passes, full or incremental.
    pub controller_devices: Family<PassLabels, Counter>,
    /// Rows deleted by retention, by table.
    pub retention_deleted: Family<TableLabels, Counter>,
    /// Retention pass duration in seconds.
    pub retention_pass: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let records = Family::<ClassLabels, Counter>::default();
        let batches = Counter::default();
        let devices = Family::<PresenceLabels, Gauge>::default();
        let store_latency: Family<OpLabels, Histogram> = Family::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "flotta_http_requests",
            "Edge API requests by route and status",
            requests.clone(),
        );
        registry.register(
            "flotta_records_received",
            "Records received in batches, by class (duplicates included)",
            records.clone(),
        );
        registry.register("flotta_batches", "Batches stored", batches.clone());
        registry.register(
            "flotta_devices",
            "Enrolled devices by presence, as of the last controller pass",
            devices.clone(),
        );
        let tls_handshakes = Family::<HandshakeLabels, Counter>::default();
        registry.register(
            "flotta_tls_handshakes",
            "TLS handshakes on the API listener: full, resumed (from a session ticket) or failed",
            tls_handshakes.clone(),
        );
        let connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register(
            "flotta_connections",
            "Connections admitted and open, by listener and client class",
            connections.clone(),
        );
        let connections_refused = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "flotta_connections_refused",
            "Connections refused (503) because a connection budget was full, by listener, class and reason",
            connections_refused.clone(),
        );
        let udp_datagrams = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "flotta_udp_datagrams",
            "UDP datagrams received (in) and sent (out)",
            udp_datagrams.clone(),
        );
        let udp_bytes = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "flotta_udp_bytes",
            "UDP payload bytes received (in) and sent (out)",
            udp_bytes.clone(),
        );
        let frames = Family::<FrameResultLabels, Counter>::default();
        registry.register(
            "flotta_frames",
            "Sealed frames by result: stored, duplicate (acknowledged again), unknown_key, \
             bad_tag, epoch_mismatch, too_old, malformed, rate_limited, overloaded",
            frames.clone(),
        );
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "flotta_webhook_requests",
            "Webhook requests (Rock7 MO, ChirpStack, TTS) by route and result",
            webhook_requests.clone(),
        );
        let sbd_mt = Family::<MtResultLabels, Counter>::default();
        registry.register(
            "flotta_sbd_mt",
            "Rock7 MT (answer) deliveries by result: ok, failed, too_long, retry, gave_up, \
             replaced, unchanged, queue_full",
            sbd_mt.clone(),
        );
        let lorawan_uplinks = Family::<LoraLabels, Counter>::default();
        registry.register(
            "flotta_lorawan_uplinks",
            "LoRaWAN network-server events by network (chirpstack, tts) and result: stored, \
             duplicate, dropped (see flotta_frames_total), unbound, other_fport, no_data, \
             malformed, not_handled, event_<name> (ChirpStack events other than up)",
            lorawan_uplinks.clone(),
        );
        let lorawan_downlinks = Family::<LoraLabels, Counter>::default();
        registry.register(
            "flotta_lorawan_downlinks",
            "LoRaWAN answers by network and result: queued, not_wanted, replaced, queue_full, \
             ok, failed (refused by the network server), retry, gave_up",
            lorawan_downlinks.clone(),
        );
        let kube_requests = Family::<KubeLabels, Counter>::default();
        registry.register(
            "flotta_kubernetes_requests",
            "Kubernetes API requests outside the watches (objects = kubernetes) by verb \
             (create, patch, status, delete, get) and result (ok, conflict, not_found, refused, retry)",
            kube_requests.clone(),
        );
        let kube_status_pending = Gauge::default();
        registry.register(
            "flotta_kubernetes_status_pending",
            "Status writes waiting for kubernetes_status_writes_per_second (one per object at most)",
            kube_status_pending.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "flotta_controller_leader",
            "1 while this replica runs the controller passes (the leader), 0 otherwise",
            leader.clone(),
        );
        let controller_pass: Family<PassLabels, Histogram> = Family::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_1, 2.0, 18))) as fn() -> Histogram,
        );
        registry.register(
            "flotta_controller_pass_seconds",
            "Controller pass duration: full (every device) or incremental (devices whose inputs changed)",
            controller_pass.clone(),
        );
        let controller_devices = Family::<PassLabels, Counter>::default();
        registry.register(
            "flotta_controller_devices_looked_at",
            "Devices whose controller pass ran, by kind of pass (full or incremental)",
            controller_devices.clone(),
        );
        let retention_deleted = Family::<TableLabels, Counter>::default();
        registry.register(
            "flotta_retention_deleted",
            "Rows deleted by retention (record_retention_days), by table: records, json_events",
            retention_deleted.clone(),
        );
        let retention_pass = Histogram::new(exponential_buckets(0.001, 2.0, 20));
        registry.register(
            "flotta_retention_pass_seconds",
            "Retention pass duration (pauses between chunks included)",
            retention_pass.clone(),
        );
        registry.register(
            "flotta_store_operation_seconds",
            "Latency of store calls by operation",
            store_latency.clone(),
        );
        Self {
            registry,
            requests,
            records,
            batches,
            devices,
            store_latency,
            tls_handshakes,
            connections,
            connections_refused,
            udp_datagrams,
            udp_bytes,
            frames,
            webhook_requests,
            sbd_mt,
            lorawan_uplinks,
            lorawan_downlinks,
            kube_requests,
            kube_status_pending,
            leader,
            controller_pass,
            controller_devices,
            retention_deleted,
            retention_pass,
        }
    }

    /// Count one retention pass: its duration and the rows it deleted.
    pub fn observe_retention(&self, took: Duration, records: usize, json_events: usize) {
        self.retention_pass.observe(took.as_secs_f64());
        for (table, n) in [("records", records), ("json_events", json_events)] {
            self.retention_deleted
                .get_or_create(&TableLabels {
                    table: table.to_owned(),
                })
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }

    /// Count one controller pass: how long it took, how many devices it
    /// looked at.
    pub fn observe_pass(&self, full: bool, took: Duration, looked_at: usize) {
        let labels = PassLabels {
            pass: if full { "full" } else { "incremental" }.to_owned(),
        };
        self.controller_pass
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.controller_devices
            .get_or_create(&labels)
            .inc_by(u64::try_from(looked_at).unwrap_or(u64::MAX));
    }

    /// Count one Kubernetes API request.
    pub fn count_kube(&self, verb: &str, result: &str) {
        self.kube_requests
            .get_or_create(&KubeLabels {
                verb: verb.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Kubernetes API requests counted so far with `verb` and `result`.
    pub fn kube_requests(&self, verb: &str, result: &str) -> u64 {
        self.kube_requests
            .get_or_create(&KubeLabels {
                verb: verb.to_owned(),
                result: result.to_owned(),
            })
            .get()
    }

    fn lora(family: &Family<LoraLabels, Counter>, network: &str, result: &str) -> Counter {
        family
            .get_or_create(&LoraLabels {
                network: network.to_owned(),
                result: result.to_owned(),
            })
            .clone()
    }

    /// Count one LoRaWAN event or uplink of `network` with `result`.
    pub fn count_lora_uplink(&self, network: &str, result: &str) {
        Self::lora(&self.lorawan_uplinks, network, result).inc();
    }

    /// LoRaWAN events or uplinks counted so far.
    pub fn lora_uplinks(&self, network: &str, result: &str) -> u64 {
        Self::lora(&self.lorawan_uplinks, network, result).get()
    }

    /// Count one LoRaWAN downlink outcome.
    pub fn count_lora_downlink(&self, network: &str, result: &str) {
        Self::lora(&self.lorawan_downlinks, network, result).inc();
    }

    /// LoRaWAN downlink outcomes counted so far.
    pub fn lora_downlinks(&self, network: &str, result: &str) -> u64 {
        Self::lora(&self.lorawan_downlinks, network, result).get()
    }

    /// Count one webhook request on `route` with `result`.
    pub fn count_webhook(&self, route: &str, result: &str) {
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                route: route.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Webhook requests counted on `route` with `result` so far.
    pub fn webhooks(&self, route: &str, result: &str) -> u64 {
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                route: route.to_owned(),
                result: result.to_owned(),
            })
            .get()
    }

    /// Count one MT delivery outcome.
    pub fn count_mt(&self, result: &str) {
        self.sbd_mt
            .get_or_create(&MtResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// MT outcomes counted with `result` so far.
    pub fn mts(&self, result: &str) -> u64 {
        self.sbd_mt
            .get_or_create(&MtResultLabels {
                result: result.to_owned(),
            })
            .get()
    }

    /// Count one sealed frame (or datagram) with `result`.
    pub fn count_frame(&self, result: &str) {
        self.frames
            .get_or_create(&FrameResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Frames counted with `result` so far.
    pub fn frames(&self, result: &str) -> u64 {
        self.frames
            .get_or_create(&FrameResultLabels {
                result: result.to_owned(),
            })
            .get()
    }

    /// Count one datagram of `bytes` travelling `direction` (`in`, `out`).
    pub fn count_datagram(&self, direction: &str, bytes: usize) {
        let labels = DirectionLabels {
            direction: direction.to_owned(),
        };
        self.udp_datagrams.get_or_create(&labels).inc();
        self.udp_bytes
            .get_or_create(&labels)
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Datagrams counted travelling `direction` so far.
    pub fn datagrams(&self, direction: &str) -> u64 {
        self.udp_datagrams
            .get_or_create(&DirectionLabels {
                direction: direction.to_owned(),
            })
            .get()
    }

    /// Count one handshake of `kind` (`full`, `resumed`, `failed`).
    pub fn count_handshake(&self, kind: &str) {
        self.tls_handshakes
            .get_or_create(&HandshakeLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Handshakes of `kind` so far.
    pub fn handshakes(&self, kind: &str) -> u64 {
        self.tls_handshakes
            .get_or_create(&HandshakeLabels {
                kind: kind.to_owned(),
            })
            .get()
    }

    /// Shared handle.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Record one store call.
    pub fn observe_store(&self, op: &str, took: Duration) {
        self.store_latency
            .get_or_create(&OpLabels { op: op.to_owned() })
            .observe(took.as_secs_f64());
    }

    /// The text exposition (OpenMetrics text, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
