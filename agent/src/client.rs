//! Blocking Edge API client (ureq + rustls, TLS 1.3, mTLS). Every call here
//! blocks: the runtime calls it from `spawn_blocking`, never on its own thread.
//!
//! TLS is `tls.rs` (certificates checked at agent time); the `Date` of
//! every 2xx answer is handed to the agent clock (`agent_time/`), which is
//! how a device without RTC or NTP learns the time.

use std::time::Duration;

use flotta_proto::batch::{API_BASE, BATCH_CONTENT_TYPE, BatchRequest, BatchResponse, batch_path};
use flotta_proto::compress::{DEFLATE, deflate_if_smaller, inflate};
use flotta_proto::frame_keys::FrameKeys;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent_time::{AgentClock, parse_http_date};
use crate::link::LinkProfile;

/// Largest response body read.
const MAX_RESPONSE_BYTES: u64 = 2 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection, timeout, TLS failure, reset.
    #[error("transport: {0}")]
    Transport(#[from] ureq::Error),
    /// 401: the certificate is expired or unknown; re-register.
    #[error("unauthorized (401): {0}")]
    Unauthorized(String),
    /// 403: not allowed (e.g. not approved yet).
    #[error("forbidden (403): {0}")]
    Forbidden(String),
    /// Any other unexpected status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// Body, for the log.
        body: String,
    },
    /// A 2xx answer we cannot understand.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// Our own certificate or the CA could not be loaded.
    #[error("TLS material: {0}")]
    Tls(String),
}

impl ClientError {
    /// Whether the same call may succeed later without any change on our side.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            ClientError::Forbidden(_) => true, // approval may come
            ClientError::Unauthorized(_) | ClientError::BadResponse(_) | ClientError::Tls(_) => {
                false
            }
        }
    }
}

/// Outcome of an enrolment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolment {
    /// 200: enrolled, waiting for approval.
    Pending,
    /// 208: approved; registration may proceed.
    Approved,
}

/// A connection to the Edge API with one client certificate.
pub struct EdgeClient {
    agent: ureq::Agent,
    base: String,
    device_id: String,
    clock: AgentClock,
}

impl std::fmt::Debug for EdgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeClient")
            .field("base", &self.base)
            .field("device_id", &self.device_id)
            .finish()
    }
}

impl EdgeClient {
    /// A client for `device_id` at `server_url`, presenting `cert_pem`/`key_pem`
    /// and trusting only `ca_pem`, on the real clocks with the build floor
    /// (tools and tests; the agent passes its clock to
    /// [`with_clock`](Self::with_clock)).
    pub fn new(
        server_url: &str,
        device_id: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        link: &LinkProfile,
    ) -> Result<Self, ClientError> {
        let clock = AgentClock::system();
        Self::with_clock(
            server_url, device_id, ca_pem, cert_pem, key_pem, link, &clock,
        )
    }

    /// [`new`](Self::new) checking certificates at `clock`'s time, and
    /// telling `clock` the server's `Date` of every 2xx answer.
    pub fn with_clock(
        server_url: &str,
        device_id: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        link: &LinkProfile,
        clock: &AgentClock,
    ) -> Result<Self, ClientError> {
        let tls = crate::tls::client_config(ca_pem, cert_pem, key_pem, clock)
            .map_err(ClientError::Tls)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(true)
            .timeout_connect(Some(Duration::from_secs(link.connect_timeout_seconds)))
            .timeout_global(Some(Duration::from_secs(link.request_timeout_seconds)))
            .user_agent(concat!("flotta-agent/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(EdgeClient {
            agent: crate::tls::agent(config, tls),
            base: server_url.trim_end_matches('/').to_owned(),
            device_id: device_id.to_owned(),
            clock: clock.clone(),
        })
    }

    /// POST `body`; with `close`, ask for the connection to end after the
    /// answer (the last request of a window: the radio may sleep at once, and
    /// the next window resumes the TLS session from its ticket).
    /// `deflated`: the body is zlib-compressed (and a compressed answer is welcome).
    fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        close: bool,
        deflated: bool,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type);
        if close {
            req = req.header("connection", "close");
        }
        if deflated {
            req = req
                .header("content-encoding", DEFLATE)
                .header("accept-encoding", DEFLATE);
        }
        let mut resp = req.send(body)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status)
            && let Some(server_ms) = resp
                .headers()
                .get("date")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_http_date)
        {
            // The server proved itself (pinned CA) and answered: its time is real.
            self.clock.observe_server_time(server_ms);
        }
        let encoding = resp
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()?;
        let body = match encoding.as_deref() {
            Some(e) if e.eq_ignore_ascii_case(DEFLATE) => {
                inflate(&body, MAX_RESPONSE_BYTES as usize)
                    .map_err(|e| ClientError::BadResponse(e.to_string()))?
            }
            None | Some("identity") => body,
            Some(other) => {
                return Err(ClientError::BadResponse(format!(
                    "unsupported content encoding {other:?}"
                )));
            }
        };
        match status {
            200..=299 => Ok((status, body)),
            401 => Err(ClientError::Unauthorized(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            403 => Err(ClientError::Forbidden(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            _ => Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            }),
        }
    }

    fn data_out(&self, directive: &str, content: Value) -> Result<(u16, Vec<u8>), ClientError> {
        let msg = json!({
            "type": "data",
            "directive": directive,
            "message_id": format!("{}-{}", directive, crate::clock::Clock::now_ms(&self.clock)),
            "version": 1,
            "content": content,
        });
        let path = format!("{API_BASE}/data/{}/out", self.device_id);
        self.post(
            &path,
            "application/json",
            msg.to_string().as_bytes(),
            false,
            false,
        )
    }

    /// Flotta's enrolment (with the registration certificate).
    pub fn enrol(&self, namespace: &str, hardware: &Value) -> Result<Enrolment, ClientError> {
        let content = json!({"target_namespace": namespace, "features": {"hardware": hardware}});
        match self.data_out("enrolment", content)?.0 {
            208 => Ok(Enrolment::Approved),
            _ => Ok(Enrolment::Pending),
        }
    }

    /// Flotta's registration: send a CSR, get the signed certificate (PEM).
    pub fn register(&self, csr_pem: &str, hardware: &Value) -> Result<String, ClientError> {
        self.register_with_keys(csr_pem, hardware)
            .map(|(cert, _)| cert)
    }

    /// [`register`](Self::register), and the sealed-frame keys if the
    /// answer carries them.
    pub fn register_with_keys(
        &self,
        csr_pem: &str,
        hardware: &Value,
    ) -> Result<(String, Option<FrameKeys>), ClientError> {
        let content = json!({"certificate_request": csr_pem, "hardware": hardware});
        let (_, body) = self.data_out("registration", content)?;
        registration_answer(&body)
    }

    /// Our batch route: upload records (zlib-compressed when that is
    /// smaller), get the acknowledgement and maybe a configuration. `last`:
    /// nothing follows in this window, close the connection. The size
    /// returned is of the request body as sent plus the answer as decoded.
    pub fn batch(
        &self,
        req: &BatchRequest,
        last: bool,
    ) -> Result<(BatchResponse, usize), ClientError> {
        let (body, deflated) = deflate_if_smaller(req.encode());
        let (_, resp) = self.post(
            &batch_path(&self.device_id),
            BATCH_CONTENT_TYPE,
            &body,
            last,
            deflated,
        )?;
        let decoded =
            BatchResponse::decode(&resp).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        Ok((decoded, body.len() + resp.len()))
    }
}

/// The certificate of a registration answer (`content.certificate`), and
/// its sealed-frame keys (`content.frameKeys`, or `frameKeys` beside
/// `content`) when present and valid; keys that do not parse are left out
/// (the batch route delivers them).
fn registration_answer(body: &[u8]) -> Result<(String, Option<FrameKeys>), ClientError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    let cert = v
        .pointer("/content/certificate")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ClientError::BadResponse("registration response without content.certificate".into())
        })?;
    let keys = v
        .pointer("/content/frameKeys")
        .or_else(|| v.get("frameKeys"))
        .and_then(|k| FrameKeys::deserialize(k).ok())
        .filter(|k| k.validate().is_ok());
    Ok((cert, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_answer_may_carry_frame_keys() {
        let keys = format!(
            r#"{{"keyId":"01020304","epoch":2,"masterSecret":"{}","masterSalt":"00"}}"#,
            "ab".repeat(32)
        );
        let with = format!(r#"{{"content":{{"certificate":"PEM","frameKeys":{keys}}}}}"#);
        let (cert, k) = registration_answer(with.as_bytes()).unwrap();
        assert_eq!((cert.as_str(), k.map(|k| k.epoch)), ("PEM", Some(2)));
        let beside = format!(r#"{{"content":{{"certificate":"PEM"}},"frameKeys":{keys}}}"#);
        assert!(registration_answer(beside.as_bytes()).unwrap().1.is_some());
        let bad = r#"{"content":{"certificate":"PEM","frameKeys":{"keyId":"01"}}}"#;
        assert_eq!(
            registration_answer(bad.as_bytes()).unwrap(),
            ("PEM".into(), None)
        );
        assert!(registration_answer(br#"{"content":{}}"#).is_err());
    }
}
