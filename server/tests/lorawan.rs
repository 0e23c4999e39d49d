//! LoRaWAN through ChirpStack v4 and The Things Stack v3 against a real
//! server in process: uplink webhooks authenticated by their secret
//! header, frames without key id stored exactly once for the DevEUI's
//! device, answers replaced into a fake network server's downlink queue
//! (with the configured API key, never the request's), and everything
//! unauthenticated or unusable refused or counted without being stored.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::frames::{context, eventually, id, item, seqs};
use common::rock7::SbdDevice;
use common::{heartbeat, log};
use flotta_proto::frame::{DownItem, FrameType, UpItem, down_items, open};
use flotta_proto::payload::DeviceStatus;
use flotta_server::links::LinkAddress;
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::{Value, json};

const DEV_EUI: &str = "70B3D57ED005A1B2";
const CS_SECRET: &str = "Bearer chirpstack-webhook-secret";
const TTS_SECRET: &str = "tts-webhook-secret-0123";
const CS_TOKEN: &str = "cs-api-token";
const TTS_KEY: &str = "NNSXS.tts-api-key";

/// One request the fake network-server API received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A network server's downlink API, faked: every request is captured;
/// replies follow the script (statuses), then 200 `{}`.
struct FakeApi {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl FakeApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let (r, sc) = (requests.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = first.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                );
                let mut headers = HashMap::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let Some((k, v)) = line.trim_end().split_once(':') else {
                        break;
                    };
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
                let len = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                r.lock().unwrap().push(Request {
                    method,
                    path,
                    headers,
                    body,
                });
                let status = sc.lock().unwrap().pop_front().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
            }
        });
        Self {
            url,
            requests,
            script,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

struct Setup {
    s: TestServer,
    api: FakeApi,
    _dir: tempfile::TempDir,
}

/// A server with both integrations on, their APIs at one fake HTTP server
/// (ChirpStack's through its REST gateway: the gRPC path is tested against
/// the simulator, `tests/tests/lorawan_network.rs`), fast retries.
fn lorawan_server() -> Setup {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let (token, key) = (dir.path().join("cs-token"), dir.path().join("tts-key"));
    std::fs::write(&token, format!("{CS_TOKEN}\n")).unwrap();
    std::fs::write(&key, format!("{TTS_KEY}\n")).unwrap();
    let toml = format!(
        "webhook_listen_addr = \"127.0.0.1:0\"\n\
         webhook_max_body_bytes = 4096\n\
         chirpstack_enabled = true\n\
         chirpstack_auth_secret = \"{CS_SECRET}\"\n\
         chirpstack_api_url = \"{url}\"\n\
         chirpstack_api_protocol = \"rest\"\n\
         chirpstack_api_token_file = \"{}\"\n\
         tts_enabled = true\n\
         tts_auth_secret = \"{TTS_SECRET}\"\n\
         tts_api_url = \"{url}\"\n\
         tts_application_id = \"app1\"\n\
         tts_webhook_id = \"flotta\"\n\
         tts_api_key_file = \"{}\"\n\
         lorawan_fport = 10\n\
         lorawan_downlink_retry_initial_ms = 50\n\
         lorawan_downlink_retry_max_ms = 200\n",
        token.display(),
        key.display(),
        url = api.url,
    );
    let s = spawn(TestOptions {
        config_toml: toml,
        ..TestOptions::default()
    })
    .unwrap();
    Setup { s, api, _dir: dir }
}

/// Provision `name` with `dev_eui` bound: frames sealed without key id.
fn provision(s: &TestServer, name: &str, dev_eui: &str) -> SbdDevice {
    let out = tempfile::tempdir().unwrap();
    let address = LinkAddress::dev_eui(dev_eui).unwrap();
    let request = flotta_server::provision::Request {
        id: &id(name),
        namespace: &flotta_server::device_id::Namespace::parse("default").unwrap(),
        validity: Duration::from_secs(3600),
        rotation: Duration::from_secs(86_400),
        now: std::time::SystemTime::now(),
        out: out.path(),
        bind: std::slice::from_ref(&address),
    };
    let made = flotta_server::provision::provision(s.shared_store(), s.pki(), &request).unwrap();
    // As `flotta-server provision` does: its EdgeDevice at once (describe reads it).
    let now_ms = flotta_server::clock::unix_ms(std::time::SystemTime::now());
    flotta_server::controller::reconcile_device(
        s.store(),
        s.objects(),
        s.config.controller_settings(),
        &id(name),
        now_ms,
    )
    .unwrap();
    SbdDevice {
        id: name.to_owned(),
        ctx: context(name, &made.keys),
        keys: made.keys,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// POST `body` to `path` of the webhook listener with `headers`; the status.
fn post(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let url = format!("http://{}{path}", s.webhook_addr.unwrap());
    let mut req = agent()
        .post(&url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(body).unwrap().status().as_u16()
}

/// ChirpStack's `up` event for `data` (zero fields omitted, as ChirpStack does).
fn cs_up(dev_eui: &str, f_cnt: u32, f_port: u32, data: &[u8]) -> Vec<u8> {
    let mut v = json!({
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-12-01T21:40:07.775023242+00:00",
        "deviceInfo": {"tenantName": "ChirpStack", "applicationName": "flotta",
            "deviceName": "sensor", "devEui": dev_eui.to_ascii_lowercase()},
        "devAddr": "00189440", "dr": 5, "fPort": f_port,
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -97, "snr": 6.5},
                   {"gatewayId": "0016c001f153a14d", "rssi": -110, "snr": -2.0}],
        "txInfo": {"frequency": 868100000, "modulation": {"lora":
            {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
    });
    if f_cnt != 0 {
        v["fCnt"] = f_cnt.into();
    }
    if !data.is_empty() {
        v["data"] = STANDARD.encode(data).into();
    }
    v.to_string().into_bytes()
}

/// A TTS uplink message for `data`.
fn tts_up(device_id: &str, dev_eui: &str, f_cnt: u32, data: &[u8]) -> Vec<u8> {
    json!({
        "end_device_ids": {"device_id": device_id, "application_ids": {"application_id": "app1"},
            "dev_eui": dev_eui.to_ascii_uppercase(), "dev_addr": "260B1234"},
        "correlation_ids": ["as:up:01E0WZGT4A8QY2EH8FCE0RJ8MM"],
        "received_at": "2026-12-01T21:40:07.787Z",
        "uplink_message": {"f_port": 10, "f_cnt": f_cnt, "frm_payload": STANDARD.encode(data),
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw1"}, "rssi": -101, "channel_rssi": -101, "snr": 3.25}],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                "frequency": "868300000"},
            "received_at": "2026-12-01T21:40:07.780Z", "consumed_airtime": "0.2s"},
    })
    .to_string()
    .into_bytes()
}

fn cs_post(s: &TestServer, body: &[u8]) -> u16 {
    post(
        s,
        "/chirpstack?event=up",
        &[("authorization", CS_SECRET)],
        body,
    )
}

fn tts_post(s: &TestServer, body: &[u8]) -> u16 {
    post(
        s,
        "/tts/uplink",
        &[
            ("x-flotta-secret", TTS_SECRET),
            ("X-Downlink-Apikey", "NNSXS.a-key-from-the-request"),
            (
                "X-Downlink-Replace",
                "http://attacker.invalid/api/v3/as/applications/app1/webhooks/flotta/devices/dev-1/down/replace",
            ),
        ],
        body,
    )
}

/// The items of a sealed answer opened with the device's context.
fn answer_items(dev: &SbdDevice, raw: &[u8]) -> Vec<String> {
    let mut out = vec![0u8; raw.len()];
    let opened = open(&dev.ctx, raw, &mut out).expect("a sealed answer");
    assert_eq!(opened.header.frame_type, FrameType::DownlinkAnswer);
    down_items(opened.plaintext)
        .map(|i| match i.unwrap() {
            DownItem::Ack(a) => format!("ack below {}", a.below),
            other => format!("{other:?}"),
        })
        .collect()
}

/// A frame asking for an answer (the last of a window).
fn frame_of(dev: &SbdDevice, counter: u32, seq: u64) -> Vec<u8> {
    let records = [log(seq, "a"), heartbeat(seq + 1, DeviceStatus::Degraded)];
    let items: Vec<UpItem<'_>> = records.iter().map(item).collect();
    dev.frame_asking(counter, &items)
}

#[test]
fn a_chirpstack_uplink_is_stored_once_and_its_answer_replaces_the_device_queue() {
    let Setup { s, api, .. } = lorawan_server();
    let dev = provision(&s, "lora-1", DEV_EUI);
    let frame = frame_of(&dev, 0, 10);
    assert!(frame.len() <= 242);
    let body = cs_up(DEV_EUI, 7, 10, &frame);
    assert_eq!(cs_post(&s, &body), 200);
    // Stored synchronously, before the 200.
    assert_eq!(seqs(&s, "lora-1"), vec![10, 11]);
    assert_eq!(s.frames("stored"), 1);
    let link = s.store().frame_link_status(&id("lora-1")).unwrap();
    assert_eq!(link.last_link.as_deref(), Some("lorawan"));
    let lora = s.store().lorawan_status(&id("lora-1")).unwrap().unwrap();
    assert_eq!(lora.dev_eui, DEV_EUI.to_ascii_lowercase());
    assert_eq!((lora.last_f_cnt, lora.last_dr), (Some(7), Some(5)));
    assert_eq!((lora.rssi, lora.snr), (Some(-97.0), Some(6.5)));
    let expected = flotta_server::lorawan::uplink_airtime_us(
        flotta_server::lorawan::Region::Eu868,
        5,
        frame.len(),
    )
    .unwrap();
    assert_eq!(lora.airtime_us, expected);

    // FlushQueue, then Enqueue, with the configured token.
    eventually("the downlink", || {
        s.metrics().lora_downlinks("chirpstack", "ok") == 1
    });
    let reqs = api.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let path = format!("/api/devices/{}/queue", DEV_EUI.to_ascii_lowercase());
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("DELETE", path.as_str())
    );
    assert_eq!(
        (reqs[1].method.as_str(), reqs[1].path.as_str()),
        ("POST", path.as_str())
    );
    for r in &reqs {
        assert_eq!(r.headers["authorization"], format!("Bearer {CS_TOKEN}"));
    }
    let sent: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    let item = &sent["queueItem"];
    assert_eq!(item["devEui"], DEV_EUI.to_ascii_lowercase());
    assert_eq!(
        (item["fPort"].as_u64(), item["confirmed"].as_bool()),
        (Some(10), Some(false))
    );
    let raw = STANDARD.decode(item["data"].as_str().unwrap()).unwrap();
    assert!(raw.len() <= 51, "lorawan_answer_bytes");
    assert_eq!(answer_items(&dev, &raw)[0], "ack below 1");
    eventually("the downlink counted", || {
        s.store()
            .lorawan_status(&id("lora-1"))
            .unwrap()
            .unwrap()
            .downlinks
            == 1
    });

    // The same uplink again (a replay): a duplicate, nothing stored twice.
    assert_eq!(cs_post(&s, &body), 200);
    assert_eq!(s.frames("duplicate"), 1);
    assert_eq!(seqs(&s, "lora-1"), vec![10, 11]);
    assert_eq!(s.metrics().lora_uplinks("chirpstack", "duplicate"), 1);
    let again = s.store().lorawan_status(&id("lora-1")).unwrap().unwrap();
    assert_eq!(again.airtime_us, expected, "duplicates add no airtime");
    assert_eq!(s.metrics().webhooks("/chirpstack", "accepted"), 2);
}

#[test]
fn a_frame_that_does_not_ask_is_stored_and_not_answered() {
    let Setup { s, api, .. } = lorawan_server();
    let dev = provision(&s, "lora-quiet", DEV_EUI);
    let records = [log(30, "a")];
    let items: Vec<UpItem<'_>> = records.iter().map(item).collect();
    let frame = dev.frame(0, &items);
    assert_eq!(cs_post(&s, &cs_up(DEV_EUI, 1, 10, &frame)), 200);
    assert_eq!(seqs(&s, "lora-quiet"), vec![30]);
    // The next frame asks: its answer (acking both) is the only downlink.
    assert_eq!(
        cs_post(&s, &cs_up(DEV_EUI, 2, 10, &frame_of(&dev, 1, 31))),
        200
    );
    eventually("the asked-for downlink", || {
        s.metrics().lora_downlinks("chirpstack", "ok") == 1
    });
    assert_eq!(s.metrics().lora_downlinks("chirpstack", "not_wanted"), 1);
    let posts = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "one downlink enqueued");
}

#[test]
fn a_tts_uplink_is_stored_and_answered_with_the_configured_key_never_the_requests() {
    let Setup { s, api, .. } = lorawan_server();
    let dev = provision(&s, "lora-2", DEV_EUI);
    // The first attempt meets a 503 and is retried.
    api.script.lock().unwrap().push_back(503);
    let frame = frame_of(&dev, 0, 20);
    assert_eq!(tts_post(&s, &tts_up("dev-1", DEV_EUI, 3, &frame)), 200);
    assert_eq!(seqs(&s, "lora-2"), vec![20, 21]);
    let lora = s.store().lorawan_status(&id("lora-2")).unwrap().unwrap();
    assert_eq!(
        (lora.last_f_cnt, lora.last_dr, lora.rssi),
        (Some(3), Some(3), Some(-101.0))
    );

    eventually("the downlink", || {
        s.metrics().lora_downlinks("tts", "ok") == 1
    });
    assert_eq!(s.metrics().lora_downlinks("tts", "retry"), 1);
    let reqs = api.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.path,
            "/api/v3/as/applications/app1/webhooks/flotta/devices/dev-1/down/replace"
        );
        assert_eq!(r.headers["authorization"], format!("Bearer {TTS_KEY}"));
    }
    let sent: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    let down = &sent["downlinks"][0];
    assert_eq!(
        (down["f_port"].as_u64(), down["priority"].as_str()),
        (Some(10), Some("NORMAL"))
    );
    let raw = STANDARD
        .decode(down["frm_payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(answer_items(&dev, &raw)[0], "ack below 1");
}

#[test]
fn missing_or_wrong_secrets_and_bad_bodies_are_refused_and_store_nothing() {
    let Setup { s, api, .. } = lorawan_server();
    let dev = provision(&s, "lora-3", DEV_EUI);
    let good = cs_up(DEV_EUI, 1, 10, &frame_of(&dev, 0, 1));
    let tts_good = tts_up("dev-1", DEV_EUI, 1, &frame_of(&dev, 0, 1));
    for (path, headers, body, status) in [
        ("/chirpstack?event=up", vec![], &good, 401),
        ("/chirpstack?event=up", vec![("authorization", "Bearer wrong-secret-of-same-len")], &good, 401),
        ("/chirpstack?event=up", vec![("x-flotta-secret", TTS_SECRET)], &good, 401),
        ("/tts/uplink", vec![], &tts_good, 401),
        ("/tts/uplink", vec![("x-flotta-secret", "tts-webhook-secret-0124")], &tts_good, 401),
        ("/tts/uplink", vec![("authorization", CS_SECRET)], &tts_good, 401),
        ("/chirpstack", vec![("authorization", CS_SECRET)], &good, 400),
        ("/chirpstack?event=up", vec![("authorization", CS_SECRET)], &b"{not json".to_vec(), 400),
        (
            "/chirpstack?event=up",
            vec![("authorization", CS_SECRET)],
            &br#"{"deviceInfo":{"devEui":"70b3"},"fPort":10,"data":"qg=="}"#.to_vec(),
            400,
        ),
        ("/tts/uplink", vec![("x-flotta-secret", TTS_SECRET)], &b"[]".to_vec(), 400),
        (
            "/tts/uplink",
            vec![("x-flotta-secret", TTS_SECRET)],
            &br#"{"end_device_ids":{"device_id":"dev-1","dev_eui":"70B3D57ED005A1B2"},"join_accept":{}}"#
                .to_vec(),
            400,
        ),
    ] {
        assert_eq!(post(&s, path, &headers, body), status, "{path} {headers:?}");
    }
    assert_eq!(s.metrics().webhooks("/chirpstack", "unauthorized"), 3);
    assert_eq!(s.metrics().webhooks("/tts/uplink", "unauthorized"), 3);
    assert_eq!(s.metrics().webhooks("/chirpstack", "bad_request"), 3);
    assert_eq!(s.metrics().webhooks("/tts/uplink", "bad_request"), 2);

    // Other events, other ports and empty uplinks: 200, counted, not stored.
    let cs = [("authorization", CS_SECRET)];
    assert_eq!(post(&s, "/chirpstack?event=join", &cs, b"{}"), 200);
    assert_eq!(post(&s, "/chirpstack?event=status", &cs, b"{}"), 200);
    assert_eq!(
        post(
            &s,
            "/chirpstack?event=up",
            &cs,
            &cs_up(DEV_EUI, 2, 11, b"x")
        ),
        200
    );
    assert_eq!(
        post(&s, "/chirpstack?event=up", &cs, &cs_up(DEV_EUI, 3, 0, b"")),
        200
    );
    assert_eq!(
        post(&s, "/chirpstack?event=up", &cs, &cs_up(DEV_EUI, 4, 10, b"")),
        200
    );
    let m = s.metrics();
    assert_eq!(m.lora_uplinks("chirpstack", "event_join"), 1);
    assert_eq!(m.lora_uplinks("chirpstack", "event_status"), 1);
    assert_eq!(m.lora_uplinks("chirpstack", "other_fport"), 1);
    assert_eq!(m.lora_uplinks("chirpstack", "no_data"), 2);
    // Another application's uplink is not ours.
    let other = String::from_utf8(tts_good.clone())
        .unwrap()
        .replace("app1", "app2");
    assert_eq!(tts_post(&s, other.as_bytes()), 200);
    assert_eq!(m.lora_uplinks("tts", "other_application"), 1);

    // Too large: refused before reading (webhook_max_body_bytes = 4096).
    assert_eq!(
        post(
            &s,
            "/tts/uplink",
            &[("x-flotta-secret", TTS_SECRET)],
            &vec![b' '; 8192]
        ),
        413
    );

    assert!(seqs(&s, "lora-3").is_empty());
    assert_eq!(s.frames("stored"), 0);
    assert!(s.store().lorawan_status(&id("lora-3")).unwrap().is_none());
    assert!(api.requests().is_empty(), "no downlink");
}

#[test]
fn an_unbound_dev_eui_and_a_forged_frame_are_counted_and_not_stored() {
    let Setup { s, api, .. } = lorawan_server();
    let dev = provision(&s, "lora-4", DEV_EUI);
    let frame = frame_of(&dev, 0, 1);
    assert_eq!(cs_post(&s, &cs_up("0000000000000001", 1, 10, &frame)), 200);
    assert_eq!(s.frames("unbound"), 1);
    assert_eq!(s.metrics().lora_uplinks("chirpstack", "unbound"), 1);
    assert_eq!(
        tts_post(&s, &tts_up("dev-9", "0000000000000002", 1, &frame)),
        200
    );
    assert_eq!(s.metrics().lora_uplinks("tts", "unbound"), 1);

    let mut forged = frame.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(cs_post(&s, &cs_up(DEV_EUI, 1, 10, &forged)), 200);
    assert_eq!(s.frames("bad_tag"), 1);
    assert_eq!(s.metrics().lora_uplinks("chirpstack", "dropped"), 1);

    // Another device's frame under this DevEUI: refused (wrong device).
    let other = provision(&s, "lora-5", "0102030405060708");
    assert_eq!(
        cs_post(
            &s,
            &cs_up(
                DEV_EUI,
                2,
                10,
                &other.seal(
                    0,
                    true,
                    &common::frames::FrameDevice::plaintext("1", 0, &[])
                )
            )
        ),
        200
    );
    assert_eq!(s.frames("wrong_device"), 1);

    assert!(seqs(&s, "lora-4").is_empty());
    assert!(seqs(&s, "lora-5").is_empty());
    assert_eq!(s.frames("stored"), 0);
    std::thread::sleep(Duration::from_millis(100));
    assert!(api.requests().is_empty(), "nothing answered");

    // Unbinding stops the uplinks; binding elsewhere is refused while bound.
    let dev_eui = LinkAddress::dev_eui(DEV_EUI).unwrap();
    assert!(s.store().bind_link(&dev_eui, &id("lora-5"), 0).is_err());
    assert_eq!(s.store().unbind_link(&dev_eui).unwrap(), Some(id("lora-4")));
    assert_eq!(
        cs_post(&s, &cs_up(DEV_EUI, 3, 10, &frame_of(&dev, 1, 5))),
        200
    );
    assert_eq!(s.metrics().lora_uplinks("chirpstack", "unbound"), 2);
}

#[test]
fn dev_euis_are_bound_through_the_cli_shown_by_describe_and_go_with_decommissioning() {
    let Setup { s, .. } = lorawan_server();
    let a = provision(&s, "lora-7", DEV_EUI);
    let _b = provision(&s, "lora-8", "0102030405060708");
    assert_eq!(
        cs_post(&s, &cs_up(DEV_EUI, 9, 10, &frame_of(&a, 0, 1))),
        200
    );
    eventually("the downlink counted", || {
        s.store()
            .lorawan_status(&id("lora-7"))
            .unwrap()
            .unwrap()
            .downlinks
            == 1
    });
    let ctl = |args: &[&str]| common::ctl::ctl(&s, args, None);
    let described = common::ctl::ok(ctl(&["describe", "ed", "lora-7"]));
    assert!(described.contains("Link:         lorawan"), "{described}");
    let line = described
        .lines()
        .find(|l| l.starts_with("LoRaWAN:"))
        .unwrap_or_else(|| panic!("no LoRaWAN line: {described}"));
    for part in [
        "DevEUI 70b3d57ed005a1b2",
        "RSSI -97.0 dBm",
        "SNR 6.5 dB",
        "DR5",
        "FCnt 9",
        " s airtime, 1 downlinks on 20",
    ] {
        assert!(line.contains(part), "{part}: {line}");
    }

    let eui = LinkAddress::dev_eui(DEV_EUI).unwrap();
    let err = common::ctl::fails(ctl(&["bind", "lora-8", "--dev-eui", DEV_EUI]));
    assert!(err.contains("bound to device \"lora-7\""), "{err}");
    let err = common::ctl::fails(ctl(&["bind", "lora-8", "--dev-eui", "70b3d57e"]));
    assert!(err.contains("16 hex digits"), "{err}");
    let err = common::ctl::fails(ctl(&[
        "bind",
        "lora-8",
        "--dev-eui",
        DEV_EUI,
        "--imei",
        "300234010753370",
    ]));
    assert!(err.contains("cannot be used with"), "{err}");
    common::ctl::ok(ctl(&[
        "unbind",
        "lora-7",
        "--dev-eui",
        &DEV_EUI.to_ascii_lowercase(),
    ]));
    assert_eq!(s.store().linked_device(&eui).unwrap(), None);
    let out = common::ctl::ok(ctl(&["bind", "lora-8", "--dev-eui", DEV_EUI]));
    assert!(out.contains("lorawan 70b3d57ed005a1b2 bound"), "{out}");
    assert_eq!(s.store().linked_device(&eui).unwrap(), Some(id("lora-8")));

    // The admin API path of a binding, and its listing.
    let url = format!("http://{}/apis/devices/lora-8/links", s.admin_addr);
    let text = agent()
        .get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let links: Value = serde_json::from_str(&text).unwrap();
    assert!(links.to_string().contains("\"lorawan\""), "{links}");
    let bad = format!(
        "http://{}/apis/devices/lora-8/links/lorawan/xyz",
        s.admin_addr
    );
    assert_eq!(
        agent().post(&bad).send_empty().unwrap().status().as_u16(),
        400
    );

    // Decommissioning removes the binding and the LoRaWAN facts.
    common::ctl::ok(ctl(&["decommission", "lora-7"]));
    assert!(s.store().lorawan_status(&id("lora-7")).unwrap().is_none());
    common::ctl::ok(ctl(&["decommission", "lora-8"]));
    assert_eq!(s.store().linked_device(&eui).unwrap(), None);
}
