//! Rock7 as tests see it: a fake MT endpoint (a std `TcpListener` HTTP
//! responder capturing posts, with scripted replies), JWTs signed with the
//! test-only key pair in `tests/fixtures/`, webhook posts, and a RockBLOCK
//! device sealing frames without key id.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotta_proto::frame::{FrameContext, FrameType, UpItem, seal};
use flotta_proto::frame_keys::{FrameKeys, hex};
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::{Value, json};

use super::frames::{FrameDevice, context};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
pub const IMEI: &str = "300234010753370";

pub fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// What the fake MT endpoint does with the next request.
#[derive(Debug, Clone)]
pub enum Script {
    /// Answer with this status and body.
    Reply(u16, String),
    /// Close the connection without answering (a network error).
    Close,
}

/// Rock7's MT API, faked: every request is captured (form fields); replies
/// follow the script, then `OK,<n>`.
pub struct FakeRock7 {
    pub url: String,
    posts: Arc<Mutex<Vec<HashMap<String, String>>>>,
    script: Arc<Mutex<VecDeque<Script>>>,
}

impl FakeRock7 {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/rockblock/MT", listener.local_addr().unwrap());
        let posts: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Script>>> = Arc::default();
        let (p, sc) = (posts.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let form: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&body).unwrap_or_default();
                let n = {
                    let mut posts = p.lock().unwrap();
                    posts.push(form.into_iter().collect());
                    posts.len()
                };
                let next = sc.lock().unwrap().pop_front();
                let (status, text) = match next {
                    Some(Script::Close) => continue,
                    Some(Script::Reply(s, t)) => (s, t),
                    None => (200, format!("OK,{n}")),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Self { url, posts, script }
    }

    pub fn script(&self, steps: impl IntoIterator<Item = Script>) {
        self.script.lock().unwrap().extend(steps);
    }

    pub fn posts(&self) -> Vec<HashMap<String, String>> {
        self.posts.lock().unwrap().clone()
    }
}

/// Server configuration with the webhook on, MT to `mt`, fast retries.
pub fn rock7_toml(mt: &FakeRock7, password_file: &std::path::Path, extra: &str) -> String {
    format!(
        "webhook_listen_addr = \"127.0.0.1:0\"\n\
         rock7_public_key_file = \"{}\"\n\
         rock7_username = \"flotta\"\n\
         rock7_password_file = \"{}\"\n\
         rock7_mt_url = \"{}\"\n\
         rock7_mt_retry_initial_ms = 50\n\
         rock7_mt_retry_max_ms = 200\n{extra}",
        fixture("rock7-test-only.pub.pem"),
        password_file.display(),
        mt.url
    )
}

/// A server with the webhook on and a fake Rock7; the password file lives
/// as long as the returned directory.
pub fn rock7_server(extra: &str) -> (TestServer, FakeRock7, tempfile::TempDir) {
    let mt = FakeRock7::start();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("rock7-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let s = spawn(TestOptions {
        config_toml: rock7_toml(&mt, &password, extra),
        ..TestOptions::default()
    })
    .unwrap();
    (s, mt, dir)
}

/// A compact JWT over `claims`, with `header`, signed by the PKCS#8 key in
/// fixture `key`.
pub fn jwt_with(key: &str, header: &Value, claims: &Value) -> String {
    let pem = std::fs::read(fixture(key)).unwrap();
    flotta_server::rock7::testing::sign_jwt(&pem, header, claims).unwrap()
}

/// A JWT as Rock7 makes it.
pub fn jwt(claims: &Value) -> String {
    jwt_with("rock7-test-only.key.pem", &json!({"alg": "RS256"}), claims)
}

/// The fields of an MO (what Rock7 posts and mirrors in the claims).
pub fn mo_fields(imei: &str, momsn: u32, data: &[u8]) -> Vec<(String, String)> {
    [
        ("imei", imei.to_owned()),
        ("serial", "206899".to_owned()),
        ("momsn", momsn.to_string()),
        ("transmit_time", "26-12-01 21:40:07".to_owned()),
        ("iridium_latitude", "52.3867".to_owned()),
        ("iridium_longitude", "-0.2938".to_owned()),
        ("iridium_cep", "8.0".to_owned()),
        ("data", hex(data)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The claims Rock7 signs for `fields`.
pub fn claims_of(fields: &[(String, String)]) -> Value {
    let mut m: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    m.insert("iss".into(), "Rock 7".into());
    m.insert("iat".into(), 1_764_625_207.into());
    Value::Object(m)
}

/// `fields` plus `JWT`, form-encoded (Rock7's HTTP_POST).
pub fn form_body(fields: &[(String, String)], jwt: Option<&str>) -> Vec<u8> {
    let mut all = fields.to_vec();
    if let Some(j) = jwt {
        all.push(("JWT".into(), j.to_owned()));
    }
    serde_urlencoded::to_string(&all).unwrap().into_bytes()
}

/// `fields` plus `JWT` as a JSON object (Rock7's HTTP_JSON).
pub fn json_body(fields: &[(String, String)], jwt: &str) -> Vec<u8> {
    let mut m: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    m.insert("JWT".into(), jwt.into());
    Value::Object(m).to_string().into_bytes()
}

/// POST `body` to the webhook; the status.
pub fn post_mo(s: &TestServer, content_type: &str, body: &[u8]) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let url = format!("http://{}/rock7/mo", s.webhook_addr.unwrap());
    agent
        .post(&url)
        .header("content-type", content_type)
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";

/// Post an MO as Rock7 does (form, signed claims mirroring the fields).
pub fn deliver(s: &TestServer, imei: &str, momsn: u32, data: &[u8]) -> u16 {
    let fields = mo_fields(imei, momsn, data);
    post_mo(
        s,
        FORM,
        &form_body(&fields, Some(&jwt(&claims_of(&fields)))),
    )
}

/// A RockBLOCK device: frames sealed without key id.
pub struct SbdDevice {
    pub id: String,
    pub keys: FrameKeys,
    pub ctx: FrameContext,
}

impl SbdDevice {
    /// Provision `id` on the server with `imei` bound.
    pub fn provision(s: &TestServer, id: &str, imei: &str) -> Self {
        let out = tempfile::tempdir().unwrap();
        let address = flotta_server::links::LinkAddress::imei(imei).unwrap();
        let request = flotta_server::provision::Request {
            id: &super::frames::id(id),
            namespace: &flotta_server::device_id::Namespace::parse("default").unwrap(),
            validity: Duration::from_secs(3600),
            rotation: Duration::from_secs(86_400),
            now: std::time::SystemTime::now(),
            out: out.path(),
            bind: std::slice::from_ref(&address),
        };
        let made =
            flotta_server::provision::provision(s.shared_store(), s.pki(), &request).unwrap();
        // As `flotta-server provision` does: its EdgeDevice at once, not at
        // the next controller pass (describe reads it).
        let now_ms = flotta_server::clock::unix_ms(std::time::SystemTime::now());
        flotta_server::controller::reconcile_device(
            s.store(),
            &flotta_server::objects::StoreObjects(s.shared_store()),
            s.config.controller_settings(),
            &super::frames::id(id),
            now_ms,
        )
        .unwrap();
        Self {
            id: id.to_owned(),
            ctx: context(id, &made.keys),
            keys: made.keys,
        }
    }

    /// A frame without key id of `items` after a status (version "1", low water `counter`).
    pub fn frame(&self, counter: u32, items: &[UpItem<'_>]) -> Vec<u8> {
        self.seal(counter, false, &FrameDevice::plaintext("1", counter, items))
    }

    /// As [`frame`](Self::frame), the status asking for an answer (links
    /// with few downlinks answer only these).
    #[allow(dead_code)] // used by the LoRaWAN tests only
    pub fn frame_asking(&self, counter: u32, items: &[UpItem<'_>]) -> Vec<u8> {
        let plain = FrameDevice::plaintext_asking("1", counter, true, items);
        self.seal(counter, false, &plain)
    }

    pub fn seal(&self, counter: u32, with_key_id: bool, plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; plaintext.len() + 16];
        let n = seal(
            &self.ctx,
            FrameType::UplinkData,
            counter,
            with_key_id,
            plaintext,
            &mut out,
        )
        .unwrap();
        out.truncate(n);
        out
    }
}
