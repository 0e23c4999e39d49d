//! Following a server-sent event stream of the admin listener (`events -f`,
//! `logs -f`): the body read line by line with ureq, parsed into events
//! ([`SseParser`]), and a dropped connection opened again with
//! `Last-Event-ID`, so that nothing is lost or repeated.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::client::CliError;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (`message` when none was given).
    pub event: String,
    /// `id:` (the last one given on the stream when this event has none).
    pub id: Option<String>,
    /// `data:` lines, joined by newlines.
    pub data: String,
}

/// The SSE wire format, a line at a time (comments and unknown fields are
/// skipped, as the specification says).
#[derive(Debug, Default)]
pub struct SseParser {
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
}

impl SseParser {
    /// Feed one line (without its line ending); an event when the line
    /// ends one.
    pub fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(SseEvent {
                event: self.event.take().unwrap_or_else(|| "message".into()),
                id: self.last_id.clone(),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "id" => self.last_id = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }

    /// The id of the last event (for `Last-Event-ID`).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }
}

/// A followed stream: [`Follow::next_item`] blocks for the next item and
/// reconnects (with `Last-Event-ID`) whenever the connection drops.
pub struct Follow {
    addr: SocketAddr,
    agent: ureq::Agent,
    path: String,
    query: Vec<(String, String)>,
    parser: SseParser,
    body: Option<Box<dyn BufRead + Send>>,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follow")
            .field("path", &self.path)
            .field("last_id", &self.parser.last_id())
            .finish()
    }
}

impl Follow {
    /// Open `path` with `query` at the admin listener at `addr`; errors when
    /// the server refuses (4xx) or cannot be reached.
    pub fn open(
        addr: SocketAddr,
        path: &str,
        query: Vec<(String, String)>,
    ) -> Result<Self, CliError> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut f = Self {
            addr,
            agent,
            path: path.to_owned(),
            query,
            parser: SseParser::default(),
            body: None,
        };
        f.connect()?;
        Ok(f)
    }

    fn connect(&mut self) -> Result<(), CliError> {
        let mut req = self
            .agent
            .get(format!("http://{}{}", self.addr, self.path))
            .header("Accept", "text/event-stream");
        for (k, v) in &self.query {
            req = req.query(k, v);
        }
        if let Some(id) = self.parser.last_id() {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.call().map_err(|e| CliError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        if status >= 400 {
            let text = body.read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            return Err(CliError::Server { status, message });
        }
        let reader: Box<dyn Read + Send> = Box::new(body.into_reader());
        self.body = Some(Box::new(BufReader::new(reader)));
        self.parser = SseParser {
            last_id: self.parser.last_id.take(),
            ..SseParser::default()
        };
        Ok(())
    }

    /// The next item (its `event:` name and JSON), waiting as long as it
    /// takes; a dropped connection is opened again (retriable failures are
    /// retried every few seconds, others returned).
    pub fn next_item(&mut self) -> Result<(String, Value), CliError> {
        let mut line = String::new();
        loop {
            let Some(body) = self.body.as_mut() else {
                std::thread::sleep(Duration::from_secs(2));
                match self.connect() {
                    Ok(()) => eprintln!("(reconnected)"),
                    Err(e) if e.is_retriable() => {}
                    Err(e) => return Err(e),
                }
                continue;
            };
            line.clear();
            match body.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    eprintln!("(connection lost; reconnecting)");
                    self.body = None;
                }
                Ok(_) => {
                    let l = line.trim_end_matches(['\n', '\r']);
                    if let Some(ev) = self.parser.line(l) {
                        let value = serde_json::from_str(&ev.data)
                            .map_err(|e| CliError::BadAnswer(format!("{e}: {}", ev.data)))?;
                        return Ok((ev.event, value));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_ids_comments_and_multi_line_data() {
        let mut p = SseParser::default();
        let mut got = Vec::new();
        for l in [
            ": keep-alive",
            "",
            "event: log",
            "id: abc",
            "data: {\"a\":",
            "data:1}",
            "",
            "data: x",
            "retry: 5",
            "",
        ] {
            got.extend(p.line(l));
        }
        assert_eq!(
            got,
            [
                SseEvent {
                    event: "log".into(),
                    id: Some("abc".into()),
                    data: "{\"a\":\n1}".into()
                },
                SseEvent {
                    event: "message".into(),
                    id: Some("abc".into()),
                    data: "x".into()
                },
            ]
        );
        assert_eq!(p.last_id(), Some("abc"));
    }
}
