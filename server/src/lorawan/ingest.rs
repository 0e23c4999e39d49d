//! What both LoRaWAN webhooks share once an uplink is decoded: the checks
//! that decide whether it is one of our frames (FPort, data), the DevEUI's
//! binding, the frame path ([`FrameIngest::handle_bound`], link
//! `lorawan`, durable before the webhook is answered) and the answer
//! queued for a downlink ([`super::downlink`]).
//!
//! Every outcome is counted in `flotta_lorawan_uplinks_total{network,result}`
//! (and frames in `flotta_frames_total`); nothing unusable is stored.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;

use super::airtime::{Region, uplink_airtime_us};
use super::downlink::{DownlinkQueue, DownlinkTarget, Network, downlink_wanted};
use super::uplink::{LoraUplink, UplinkError};
use crate::api::body::read_limited;
use crate::clock::Clock;
use crate::frames::answer::BigItems;
use crate::frames::{Carrier, FrameDrop, FrameIngest};
use crate::metrics::Metrics;
use crate::store::{LoraUplinkFacts, Store};

/// A webhook's reply.
pub type Reply = (StatusCode, &'static str);
/// 200 for anything authenticated, usable or not (counted).
pub const OK: Reply = (StatusCode::OK, "OK\n");

/// What the LoRaWAN webhooks need.
#[derive(Debug)]
pub struct LoraIngest {
    /// The frame path.
    pub ingest: Arc<FrameIngest>,
    /// Bindings.
    pub store: Arc<dyn Store>,
    /// Answers waiting for a downlink.
    pub downlinks: Arc<DownlinkQueue>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `webhook_max_body_bytes`.
    pub max_body_bytes: usize,
    /// `lorawan_answer_bytes`.
    pub answer_bytes: usize,
    /// `lorawan_fport`: uplinks on other ports are not ours.
    pub f_port: u8,
    /// `lorawan_region`: data rates, airtime.
    pub region: Region,
}

/// What became of one decoded uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored or a duplicate (label), its answer handed to the downlinks.
    Framed(&'static str),
    /// Not ours, or unusable: the label it is counted under.
    Ignored(&'static str),
    /// The server failed: the network server may deliver again.
    Failed,
}

impl LoraIngest {
    /// Read a webhook body under the listener's rules; the error is the
    /// reply and its `result` label.
    pub async fn body(&self, body: Body) -> Result<Vec<u8>, (Reply, &'static str)> {
        match read_limited(body, self.max_body_bytes).await {
            Ok(b) => Ok(b.to_vec()),
            Err(e) => {
                let result = match e.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    StatusCode::REQUEST_TIMEOUT => "timeout",
                    _ => "bad_request",
                };
                tracing::debug!("lorawan webhook body: {}", e.message());
                Err(((e.status(), "body refused\n"), result))
            }
        }
    }

    /// A body that did not decode: 400, counted `malformed`.
    pub fn refuse(&self, network: Network, e: &UplinkError) -> (Reply, &'static str) {
        tracing::info!("{} uplink refused: {e}", network.label());
        self.metrics.count_lora_uplink(network.label(), "malformed");
        ((StatusCode::BAD_REQUEST, "not an uplink\n"), "bad_request")
    }

    /// Handle a decoded uplink (on the blocking pool) and reply.
    pub async fn handle(
        self: &Arc<Self>,
        up: LoraUplink,
        target: DownlinkTarget,
    ) -> (Reply, &'static str) {
        let network = target.network();
        let this = self.clone();
        let outcome = tokio::task::spawn_blocking(move || this.uplink(up, target))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("{} uplink task failed: {e}", network.label());
                Outcome::Failed
            });
        let label = match &outcome {
            Outcome::Framed(l) | Outcome::Ignored(l) => l,
            Outcome::Failed => "not_handled",
        };
        self.metrics.count_lora_uplink(network.label(), label);
        match outcome {
            Outcome::Failed => (
                (StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
                "not_handled",
            ),
            _ => (OK, "accepted"),
        }
    }

    /// One uplink (blocking).
    pub fn uplink(&self, up: LoraUplink, target: DownlinkTarget) -> Outcome {
        let network = target.network().label();
        match up.f_port {
            None => return Outcome::Ignored("no_data"),
            Some(p) if p != self.f_port => return Outcome::Ignored("other_fport"),
            Some(_) if up.data.is_empty() => return Outcome::Ignored("no_data"),
            Some(_) => {}
        }
        match self.frame(&up, target) {
            Ok(label) => Outcome::Framed(label),
            Err(dropped) => {
                self.metrics.count_frame(dropped.label());
                match dropped {
                    FrameDrop::Failed(_) => {
                        tracing::warn!(
                            dev_eui = up.dev_eui.address(),
                            "{network} uplink not handled: {dropped}"
                        );
                        Outcome::Failed
                    }
                    FrameDrop::Unbound(_) => {
                        tracing::info!("{network} uplink dropped: {dropped}");
                        Outcome::Ignored("unbound")
                    }
                    refused @ FrameDrop::Refused(_) => {
                        tracing::warn!("device frame {refused}");
                        Outcome::Ignored("dropped")
                    }
                    other => {
                        tracing::info!("{network} uplink dropped: {other}");
                        Outcome::Ignored("dropped")
                    }
                }
            }
        }
    }

    fn frame(&self, up: &LoraUplink, target: DownlinkTarget) -> Result<&'static str, FrameDrop> {
        let Some(device) = self.store.linked_device(&up.dev_eui)? else {
            return Err(FrameDrop::Unbound(up.dev_eui.to_string()));
        };
        let now_ms = self.clock.now_ms();
        let airtime_us = up
            .dr
            .and_then(|dr| uplink_airtime_us(self.region, dr, up.data.len()))
            .unwrap_or(0);
        let carrier = Carrier {
            link: "lorawan",
            answer_bytes: self.answer_bytes,
            big_items: BigItems::Parts,
            duplicate_answer_max: self.answer_bytes,
            device: Some(&device),
            sbd: None,
            lorawan: Some(LoraUplinkFacts {
                dev_eui: up.dev_eui.address().to_owned(),
                f_cnt: up.f_cnt,
                dr: up.dr,
                rssi: up.rssi,
                snr: up.snr,
                day: crate::rock7::utc_day(now_ms),
                airtime_us,
            }),
        };
        let answered = self.ingest.handle_bound(&up.data, carrier, now_ms)?;
        let label = answered.result.label();
        self.metrics.count_frame(label);
        tracing::debug!(device = %device, dev_eui = up.dev_eui.address(), f_cnt = up.f_cnt,
            result = label, "lorawan uplink");
        let wanted = downlink_wanted(&answered);
        if let Some(answer) = answered.answer {
            if wanted {
                self.downlinks
                    .push(target, device, answer.into(), &self.metrics);
            } else {
                self.metrics
                    .count_lora_downlink(target.network().label(), "not_wanted");
            }
        }
        Ok(label)
    }
}
