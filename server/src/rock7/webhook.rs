//! The webhook route Rock7 posts MO messages to: `POST /rock7/mo`.
//!
//! 1. the body is read under the listener's deadlines, refused (413) over
//!    `webhook_max_body_bytes` before reading when its length is declared;
//! 2. `HTTP_POST` (form) or `HTTP_JSON` is parsed (400 if neither), its
//!    `JWT` verified (401 when absent, 403 when it does not verify, names
//!    another algorithm or issuer): from here on only the claims count;
//! 3. the IMEI's binding gives the device, and the frame goes through
//!    [`FrameIngest::handle_bound`]: stored (synchronously, durable before
//!    the answer) exactly as over UDP, with link `sbd`;
//! 4. the sealed answer is queued for MT delivery ([`super::mt`]) and the
//!    request is answered 200 at once: MT never delays the webhook.
//!
//! Anything authenticated gets 200, even when unusable (unbound IMEI,
//! forged frame, duplicate, invalid claims): Rock7 would otherwise retry
//! it forever. Those are counted (`flotta_frames_total`,
//! `flotta_webhook_requests_total`) and never stored. Only a server failure
//! (the store) answers 503, so that Rock7 delivers again later.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;

use super::jwt::Rock7Key;
use super::mo::{BodyFormat, MoMessage, jwt_of};
use super::mt::MtQueue;
use crate::api::body::read_limited;
use crate::clock::Clock;
use crate::frames::answer::BigItems;
use crate::frames::{Carrier, FrameDrop, FrameIngest};
use crate::metrics::Metrics;
use crate::store::{SbdUplink, Store, sbd_credits};

/// The route.
pub const MO_ROUTE: &str = "/rock7/mo";

/// What the webhook needs.
#[derive(Debug)]
pub struct Rock7Webhook {
    /// Rock7's JWT key.
    pub key: Rock7Key,
    /// The frame path.
    pub ingest: Arc<FrameIngest>,
    /// Bindings.
    pub store: Arc<dyn Store>,
    /// Answers waiting for MT.
    pub mt: Arc<MtQueue>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// `webhook_max_body_bytes`.
    pub max_body_bytes: usize,
    /// `sbd_answer_bytes`.
    pub answer_bytes: usize,
}

/// The webhook listener's routes.
pub fn router(webhook: Arc<Rock7Webhook>) -> Router {
    Router::new().route(MO_ROUTE, post(mo)).with_state(webhook)
}

type Reply = (StatusCode, &'static str);

async fn mo(State(w): State<Arc<Rock7Webhook>>, headers: HeaderMap, body: Body) -> Reply {
    let (reply, result) = w.handle(&headers, body).await;
    w.metrics.count_webhook(MO_ROUTE, result);
    reply
}

impl Rock7Webhook {
    /// The reply and its `result` label.
    async fn handle(self: &Arc<Self>, headers: &HeaderMap, body: Body) -> (Reply, &'static str) {
        let body = match read_limited(body, self.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => {
                let result = match e.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    StatusCode::REQUEST_TIMEOUT => "timeout",
                    _ => "bad_request",
                };
                tracing::debug!("rock7 webhook body: {}", e.message());
                return ((e.status(), "body refused\n"), result);
            }
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let format = BodyFormat::detect(content_type, &body);
        let token = match jwt_of(format, &body) {
            Ok(t) => t,
            Err(super::mo::MoError::NoJwt) => {
                return ((StatusCode::UNAUTHORIZED, "JWT required\n"), "unauthorized");
            }
            Err(e) => {
                tracing::debug!("rock7 webhook: {e}");
                return (
                    (StatusCode::BAD_REQUEST, "unparsable body\n"),
                    "bad_request",
                );
            }
        };
        let claims = match self.key.verify(&token) {
            Ok(c) => c,
            Err(e) => {
                tracing::info!("rock7 webhook refused: {e}");
                return ((StatusCode::FORBIDDEN, "JWT refused\n"), "forbidden");
            }
        };
        const OK: Reply = (StatusCode::OK, "OK\n");
        let message = match MoMessage::from_claims(&claims) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("rock7 MO with unusable claims: {e}");
                self.metrics.count_frame("malformed");
                return (OK, "accepted");
            }
        };
        let this = self.clone();
        let handled = tokio::task::spawn_blocking(move || this.ingest(message)).await;
        match handled {
            Ok(Ok(())) => (OK, "accepted"),
            Ok(Err(dropped)) if matches!(dropped, FrameDrop::Failed(_)) => {
                tracing::warn!("rock7 MO not handled: {dropped}");
                self.metrics.count_frame(dropped.label());
                (
                    (StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
                    "not_handled",
                )
            }
            Ok(Err(dropped)) => {
                match &dropped {
                    refused @ FrameDrop::Refused(_) => tracing::warn!("device frame {refused}"),
                    other => tracing::info!("rock7 MO dropped: {other}"),
                }
                self.metrics.count_frame(dropped.label());
                (OK, "accepted")
            }
            Err(e) => {
                tracing::warn!("rock7 MO task failed: {e}");
                self.metrics.count_frame("overloaded");
                (
                    (StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
                    "not_handled",
                )
            }
        }
    }

    /// Bound device, frame, answer queued (blocking).
    fn ingest(&self, m: MoMessage) -> Result<(), FrameDrop> {
        let Some(device) = self.store.linked_device(&m.imei)? else {
            return Err(FrameDrop::Unbound(m.imei.to_string()));
        };
        let now_ms = self.clock.now_ms();
        let carrier = Carrier {
            link: "sbd",
            answer_bytes: self.answer_bytes,
            big_items: BigItems::Parts,
            duplicate_answer_max: self.answer_bytes,
            device: Some(&device),
            sbd: Some(SbdUplink {
                imei: m.imei.address().to_owned(),
                momsn: m.momsn,
                latitude: m.latitude,
                longitude: m.longitude,
                cep_km: m.cep_km,
                day: super::utc_day(now_ms),
                credits: sbd_credits(m.data.len()),
            }),
            lorawan: None,
        };
        let answered = self.ingest.handle_bound(&m.data, carrier, now_ms)?;
        self.metrics.count_frame(answered.result.label());
        tracing::debug!(device = %device, imei = %m.imei.address(), momsn = m.momsn,
            result = answered.result.label(), "rock7 MO");
        if let Some(answer) = answered.answer {
            self.mt
                .push(m.imei.address(), device, answer.into(), &self.metrics);
        }
        Ok(())
    }
}
