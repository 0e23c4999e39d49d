//! [`AdminClient`]: HTTP calls to the admin listener (plain HTTP on
//! loopback, or TLS; with the credentials of [`AdminAccess`]).

use std::net::SocketAddr;

use serde_json::Value;

use super::access::AdminAccess;
use crate::objects::{FieldValidation, Kind};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with an error.
    #[error("server answered {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached.
    #[error(
        "cannot reach the admin listener at {addr} (is `flotta-server serve` running?): {reason}"
    )]
    Unreachable {
        /// Where we tried.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// The answer was not the expected JSON.
    #[error("unexpected answer from the server: {0}")]
    BadAnswer(String),
    /// The CLI's own credentials (token, certificate, CA) are unusable.
    #[error("admin credentials: {0}")]
    Credentials(String),
}

impl CliError {
    /// Whether trying again may help (server down or overloaded).
    pub fn is_retriable(&self) -> bool {
        match self {
            CliError::Unreachable { .. } => true,
            CliError::Server { status, .. } => *status == 503,
            CliError::BadAnswer(_) | CliError::Credentials(_) => false,
        }
    }

    /// Whether the server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Server { status: 404, .. })
    }
}

/// What `apply` answered: one result per object (`{kind, namespace, name,
/// outcome}`) and the server's warnings (from its `Warning` headers), to be
/// shown as kubectl does: `Warning: <text>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// One result per object.
    pub results: Vec<Value>,
    /// The warnings' texts, in the order sent.
    pub warnings: Vec<String>,
}

/// Client of the admin object API.
#[derive(Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    scheme: &'static str,
    agent: ureq::Agent,
}

impl AdminClient {
    /// A client for the open admin listener at `addr` (plain HTTP, no token).
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_access(addr, &AdminAccess::default())
            .unwrap_or_else(|_| unreachable!("no credentials to read"))
    }

    /// A client presenting `access` to the admin listener at `addr`.
    pub fn with_access(addr: SocketAddr, access: &AdminAccess) -> Result<Self, CliError> {
        Ok(Self {
            addr,
            scheme: access.scheme(),
            agent: access.agent()?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn finish(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, CliError> {
        self.finish_warned(r).map(|(value, _)| value)
    }

    /// The answer and the texts of its `Warning` headers (kept on errors
    /// too, as kubectl shows them: they are dropped here only because an
    /// error says more).
    fn finish_warned(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(Value, Vec<String>), CliError> {
        let mut resp = r.map_err(|e| CliError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        })?;
        let warnings = resp
            .headers()
            .get_all(ureq::http::header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(crate::warning::decode)
            .collect();
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| CliError::BadAnswer(e.to_string()))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| CliError::BadAnswer(format!("{e}: {text}")))?;
        if status >= 400 {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(&text)
                .to_owned();
            return Err(CliError::Server { status, message });
        }
        Ok((value, warnings))
    }

    /// Apply YAML/JSON manifests, unknown fields handled as `validation`
    /// says (`?fieldValidation=`).
    pub fn apply(
        &self,
        manifests: &str,
        namespace: Option<&str>,
        validation: FieldValidation,
    ) -> Result<Applied, CliError> {
        let mut req = self
            .agent
            .post(self.url("/apis/apply"))
            .query("fieldValidation", validation.as_str());
        if let Some(ns) = namespace {
            req = req.query("namespace", ns);
        }
        let (v, warnings) =
            self.finish_warned(req.content_type("application/yaml").send(manifests))?;
        let results = v
            .as_array()
            .cloned()
            .ok_or_else(|| CliError::BadAnswer("expected a list of results".into()))?;
        Ok(Applied { results, warnings })
    }

    /// Objects of a kind, in `namespace` or all namespaces.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Result<Vec<Value>, CliError> {
        let mut req = self
            .agent
            .get(self.url(&format!("/apis/{}", kind.plural())));
        if let Some(ns) = namespace {
            req = req.query("namespace", ns);
        }
        let v = self.finish(req.call())?;
        v.get("items")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| CliError::BadAnswer("expected items".into()))
    }

    /// One object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, CliError> {
        let path = format!("/apis/{}/{namespace}/{name}", kind.plural());
        self.finish(self.agent.get(self.url(&path)).call())
    }

    /// Delete one object; deleting an EdgeDevice decommissions its device,
    /// recording `actor`.
    pub fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        actor: &str,
    ) -> Result<Value, CliError> {
        let path = format!("/apis/{}/{namespace}/{name}", kind.plural());
        let req = self.agent.delete(self.url(&path)).query("actor", actor);
        self.finish(req.call())
    }

    /// Decommission a device: revoke its certificates, delete its objects,
    /// keep its data unless `purge`; `actor` is recorded (not authenticated).
    pub fn decommission(&self, device: &str, actor: &str, purge: bool) -> Result<Value, CliError> {
        let path = format!("/apis/devices/{device}/decommission");
        let req = self
            .agent
            .post(self.url(&path))
            .query("actor", actor)
            .query("purge", if purge { "true" } else { "false" });
        self.finish(req.send_empty())
    }

    /// The device's newest events (`{time, type, reason, message}`), oldest first.
    pub fn events(&self, device: &str) -> Result<Vec<Value>, CliError> {
        let path = format!("/apis/devices/{device}/events");
        let v = self.finish(self.agent.get(self.url(&path)).call())?;
        v.get("items")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| CliError::BadAnswer("expected items".into()))
    }

    /// One page of a feed route (`/apis/events`, `/apis/devices/{id}/events`,
    /// `/apis/devices/{id}/logs`): its items (oldest first) and the cursor
    /// of the next page.
    pub fn feed_page(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<(Vec<Value>, Option<String>), CliError> {
        let mut req = self.agent.get(self.url(path));
        for (k, v) in query {
            req = req.query(k, v);
        }
        let v = self.finish(req.call())?;
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| CliError::BadAnswer("expected items".into()))?;
        let next = v.get("next").and_then(Value::as_str).map(str::to_owned);
        Ok((items, next))
    }

    /// Follow a stream route (`/apis/events/stream`,
    /// `/apis/devices/{id}/logs/stream`) with `query`.
    pub fn follow(
        &self,
        path: &str,
        query: Vec<(String, String)>,
    ) -> Result<super::stream::Follow, CliError> {
        super::stream::Follow::open(self.addr, path, query)
    }

    /// Bind a link address (`kind` `sbd`: an IMEI) to a device.
    pub fn bind(&self, device: &str, kind: &str, address: &str) -> Result<Value, CliError> {
        let path = format!("/apis/devices/{device}/links/{kind}/{address}");
        self.finish(self.agent.post(self.url(&path)).send_empty())
    }

    /// Remove a device's link address.
    pub fn unbind(&self, device: &str, kind: &str, address: &str) -> Result<Value, CliError> {
        let path = format!("/apis/devices/{device}/links/{kind}/{address}");
        self.finish(self.agent.delete(self.url(&path)).call())
    }

    /// The device's link addresses (`{kind, address, boundAtMs}`).
    pub fn links(&self, device: &str) -> Result<Vec<Value>, CliError> {
        let path = format!("/apis/devices/{device}/links");
        let v = self.finish(self.agent.get(self.url(&path)).call())?;
        v.get("items")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| CliError::BadAnswer("expected items".into()))
    }

    /// The audit log, newest first: `limit` records older than `before`.
    pub fn audit(&self, before: Option<u64>, limit: usize) -> Result<Vec<Value>, CliError> {
        let mut req = self
            .agent
            .get(self.url("/apis/audit"))
            .query("limit", limit.to_string());
        if let Some(b) = before {
            req = req.query("before", b.to_string());
        }
        let v = self.finish(req.call())?;
        v.get("items")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| CliError::BadAnswer("expected items".into()))
    }

    /// Approve an enrolled device.
    pub fn approve(&self, device: &str) -> Result<Value, CliError> {
        let path = format!("/apis/devices/{device}/approve");
        self.finish(self.agent.post(self.url(&path)).send_empty())
    }

    /// `/readyz` (the store answers) when `ready`, else `/healthz` (the
    /// process answers): the text of a 200 answer, else an error.
    pub fn health(&self, ready: bool) -> Result<String, CliError> {
        let path = if ready { "/readyz" } else { "/healthz" };
        let mut resp =
            self.agent
                .get(self.url(path))
                .call()
                .map_err(|e| CliError::Unreachable {
                    addr: self.addr,
                    reason: e.to_string(),
                })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| CliError::BadAnswer(e.to_string()))?;
        match status {
            200 => Ok(text),
            _ => Err(CliError::Server {
                status,
                message: text.trim_end().to_owned(),
            }),
        }
    }
}
