//! The LoRaWAN network-server simulators against an in-process flotta
//! server: each posts uplinks to the server's webhook as the real service
//! does, the server stores the sealed frame once and replaces its answer
//! into the simulator's downlink queue, and the answer rides on the
//! device's next uplink (class A). Lost posts store nothing.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use flotta_e2e::lorawan::{ChirpstackNetwork, ChirpstackOptions, TtsNetwork, TtsOptions};
use flotta_e2e::modem::lora::network::{LoraNetwork, LoraUplink};
use flotta_proto::frame::{
    DownItem, FrameContext, FrameType, ItemWriter, KeyId, RecordHead, Role, UpItem, down_items,
    open, seal,
};
use flotta_proto::frame_keys::FrameKeys;
use flotta_proto::payload::{Level, LogLine, Payload};
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::links::LinkAddress;
use flotta_server::testing::{TestOptions, TestServer, spawn};

const EUI: [u8; 8] = [0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x05, 0xa1, 0xb2];
const CS_SECRET: &str = "Bearer chirpstack-webhook-secret";
const TTS_SECRET: &str = "tts-webhook-secret-0123";
const PORT: u8 = 10;

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A device provisioned with `EUI` bound, sealing frames without key id.
struct Device {
    ctx: FrameContext,
}

impl Device {
    fn provision(s: &TestServer, name: &str) -> Self {
        let out = tempfile::tempdir().unwrap();
        let address = LinkAddress::dev_eui_bytes(EUI);
        let id = DeviceId::parse(name).unwrap();
        let request = flotta_server::provision::Request {
            id: &id,
            namespace: &Namespace::parse("default").unwrap(),
            validity: Duration::from_secs(3600),
            rotation: Duration::from_secs(86_400),
            now: SystemTime::now(),
            out: out.path(),
            bind: std::slice::from_ref(&address),
        };
        let made =
            flotta_server::provision::provision(s.shared_store(), s.pki(), &request).unwrap();
        Self {
            ctx: context(name, &made.keys),
        }
    }

    /// A frame carrying one log record `seq`, sealed with `counter`.
    fn frame(&self, counter: u32, seq: u64) -> Vec<u8> {
        let payload = Payload::Log(LogLine {
            source: "agent".into(),
            level: Level::Info,
            message: "hello".into(),
        });
        let encoded = payload.encode();
        let mut buf = vec![0u8; 512];
        let mut w = ItemWriter::new(&mut buf);
        w.push(&UpItem::Status {
            config_version: "1",
            low_water: counter,
            // As a window's last frame: the server answers only these.
            ack_wanted: true,
            partial: None,
        })
        .unwrap();
        w.push(&UpItem::Record {
            head: RecordHead {
                seq,
                at_ms: 1_700_000_000_000,
                class: payload.class() as u8,
            },
            payload: &encoded,
        })
        .unwrap();
        let plaintext = w.written().to_vec();
        let mut out = vec![0u8; plaintext.len() + 16];
        let n = seal(
            &self.ctx,
            FrameType::UplinkData,
            counter,
            false,
            &plaintext,
            &mut out,
        )
        .unwrap();
        out.truncate(n);
        out
    }

    /// The `below` of the ack a sealed answer starts with.
    fn acked_below(&self, raw: &[u8]) -> u32 {
        let mut out = vec![0u8; raw.len()];
        let opened = open(&self.ctx, raw, &mut out).expect("a sealed answer");
        assert_eq!(opened.header.frame_type, FrameType::DownlinkAnswer);
        match down_items(opened.plaintext).next() {
            Some(Ok(DownItem::Ack(a))) => a.below,
            other => panic!("no ack first: {other:?}"),
        }
    }
}

fn context(id: &str, keys: &FrameKeys) -> FrameContext {
    FrameContext::new(
        Role::Device,
        KeyId(keys.key_id),
        keys.epoch,
        &keys.master_secret,
        &keys.master_salt,
        id.as_bytes(),
    )
    .unwrap()
}

fn uplink(f_cnt: u32, data: Vec<u8>) -> LoraUplink {
    LoraUplink {
        dev_eui: EUI,
        f_cnt,
        f_port: Some(PORT),
        data,
        dr: 5,
        confirmed: false,
        rssi: -97,
        snr_tenths_db: 65,
    }
}

fn stored(s: &TestServer, name: &str) -> Vec<u64> {
    s.store()
        .records(&DeviceId::parse(name).unwrap(), None, 100)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect()
}

/// A server whose webhook listener (on `port`) serves `integration` (TOML lines).
fn server(port: u16, integration: &str) -> TestServer {
    spawn(TestOptions {
        config_toml: format!(
            "webhook_listen_addr = \"127.0.0.1:{port}\"\nlorawan_fport = {PORT}\n\
             lorawan_downlink_retry_initial_ms = 50\nlorawan_downlink_retry_max_ms = 200\n{integration}"
        ),
        ..TestOptions::default()
    })
    .unwrap()
}

/// A free port for the server's webhook listener: the simulator needs the
/// webhook's URL before the server (which needs the simulator's API URL)
/// starts.
fn reserve_port() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// A ChirpStack simulator and a server whose API token is `token`, and
/// whose `chirpstack_api_protocol` is `protocol` (`None`: the default, gRPC).
fn chirpstack(
    dir: &std::path::Path,
    token: &str,
    protocol: Option<&str>,
) -> (ChirpstackNetwork, TestServer) {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let (reserved, port) = reserve_port();
    let cs = ChirpstackNetwork::start(ChirpstackOptions {
        webhook_url: format!("http://127.0.0.1:{port}"),
        auth_header: ("Authorization".into(), CS_SECRET.into()),
        api_token: "cs-token".into(),
        loss_rate: 0.0,
        seed: 1,
    })
    .unwrap();
    drop(reserved);
    let (url, protocol) = match protocol {
        Some(p @ "rest") => (
            cs.rest_api_url(),
            format!("chirpstack_api_protocol = \"{p}\"\n"),
        ),
        Some(p) => (cs.api_url(), format!("chirpstack_api_protocol = \"{p}\"\n")),
        None => (cs.api_url(), String::new()),
    };
    let s = server(
        port,
        &format!(
            "chirpstack_enabled = true\nchirpstack_auth_secret = \"{CS_SECRET}\"\n\
         chirpstack_api_url = \"{url}\"\nchirpstack_api_token_file = \"{}\"\n{protocol}",
            token_file.display()
        ),
    );
    (cs, s)
}

/// Uplink 1 answered into the simulator's queue through `protocol`, the
/// answer delivered with uplink 2; the API calls the simulator saw.
fn chirpstack_round_trip(protocol: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (cs, s) = chirpstack(dir.path(), "cs-token", protocol);
    let dev = Device::provision(&s, "cs-1");

    // Uplink 1: nothing queued yet; stored; its answer is enqueued.
    assert_eq!(cs.uplink(&uplink(1, dev.frame(0, 10))), None);
    assert_eq!(cs.posted()[0].0, 200);
    assert_eq!(stored(&s, "cs-1"), vec![10]);
    eventually("the answer in ChirpStack's queue", || {
        cs.queued(EUI).len() == 1
    });

    // Uplink 2 gets the answer to uplink 1 in its receive windows.
    let down = cs
        .uplink(&uplink(2, dev.frame(1, 11)))
        .expect("class A downlink");
    assert_eq!(down.f_port, PORT);
    assert!(!down.confirmed);
    assert!(down.data.len() <= 51);
    assert_eq!(dev.acked_below(&down.data), 1);
    assert_eq!(cs.downlinks_today(EUI), 1);
    assert_eq!(stored(&s, "cs-1"), vec![10, 11]);
    // The answer to uplink 2 replaced nothing older (the queue was empty).
    eventually("the second answer", || cs.queued(EUI).len() == 1);
    assert_eq!(dev.acked_below(&cs.queued(EUI)[0].data), 2);
    eventually("both downlinks counted", || {
        s.metrics().lora_downlinks("chirpstack", "ok") == 2
    });
    cs.api_calls()
}

#[test]
fn chirpstack_posts_uplinks_and_the_answer_rides_on_the_next_uplink() {
    // gRPC, the default: FlushQueue then Enqueue per answer, with the token
    // (the simulator refuses calls without it).
    let eui = LinkAddress::dev_eui_bytes(EUI).address().to_owned();
    let calls = chirpstack_round_trip(None);
    let pair = [format!("FlushQueue {eui}"), format!("Enqueue {eui}")];
    assert_eq!(calls, [pair.clone(), pair].concat());
}

#[test]
fn chirpstack_through_the_rest_gateway() {
    let eui = LinkAddress::dev_eui_bytes(EUI).address().to_owned();
    let calls = chirpstack_round_trip(Some("rest"));
    let path = format!("/api/devices/{eui}/queue");
    let pair = [format!("DELETE {path}"), format!("POST {path}")];
    assert_eq!(calls, [pair.clone(), pair].concat());
}

#[test]
fn a_wrong_chirpstack_token_is_refused_for_good() {
    for protocol in ["grpc", "rest"] {
        let dir = tempfile::tempdir().unwrap();
        let (cs, s) = chirpstack(dir.path(), "not-the-token", Some(protocol));
        let dev = Device::provision(&s, "cs-2");
        assert_eq!(cs.uplink(&uplink(1, dev.frame(0, 10))), None);
        assert_eq!(stored(&s, "cs-2"), vec![10]);
        // UNAUTHENTICATED (gRPC) or 401 (REST): final, not retried.
        eventually("the refused downlink", || {
            s.metrics().lora_downlinks("chirpstack", "failed") == 1
        });
        assert_eq!(s.metrics().lora_downlinks("chirpstack", "retry"), 0);
        assert_eq!(cs.api_calls().len(), 1, "{protocol}: flushing was refused");
        assert!(cs.queued(EUI).is_empty());
    }
}

#[test]
fn tts_posts_uplinks_and_lost_posts_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "NNSXS.flotta-key\n").unwrap();
    let (reserved, port) = reserve_port();
    let options = TtsOptions {
        webhook_url: format!("http://127.0.0.1:{port}"),
        auth_header: ("X-Flotta-Secret".into(), TTS_SECRET.into()),
        application_id: "app1".into(),
        webhook_id: "flotta".into(),
        api_key: "NNSXS.flotta-key".into(),
        downlink_api_key_header: "NNSXS.webhook-downlink-key".into(),
        loss_rate: 0.0,
        seed: 2,
    };
    let tts = TtsNetwork::start(options.clone()).unwrap();
    tts.add_device("dev-1", EUI);
    drop(reserved);
    let s = server(
        port,
        &format!(
            "tts_enabled = true\ntts_auth_secret = \"{TTS_SECRET}\"\ntts_api_url = \"{}\"\n\
         tts_application_id = \"app1\"\ntts_webhook_id = \"flotta\"\ntts_api_key_file = \"{}\"\n",
            tts.api_url(),
            key.display()
        ),
    );
    let dev = Device::provision(&s, "tts-1");

    assert_eq!(tts.uplink(&uplink(1, dev.frame(0, 20))), None);
    assert_eq!(tts.posted()[0].0, 200);
    assert_eq!(stored(&s, "tts-1"), vec![20]);
    eventually("the answer in TTS's queue", || {
        tts.queued("dev-1").len() == 1
    });
    let down = tts
        .uplink(&uplink(2, dev.frame(1, 21)))
        .expect("class A downlink");
    assert_eq!((down.f_port, dev.acked_below(&down.data)), (PORT, 1));
    assert_eq!(tts.downlinks_today("dev-1"), 1);
    assert!(
        tts.api_calls()
            .iter()
            .all(|c| c.ends_with("/devices/dev-1/down/replace")),
        "{:?}",
        tts.api_calls()
    );

    // A network that loses every post: the frame never reaches the server.
    let lossy = TtsNetwork::start(TtsOptions {
        loss_rate: 1.0,
        ..options
    })
    .unwrap();
    lossy.add_device("dev-1", EUI);
    let _ = lossy.uplink(&uplink(3, dev.frame(2, 22)));
    assert_eq!((lossy.lost(), lossy.posted().len()), (1, 0));
    assert_eq!(stored(&s, "tts-1"), vec![20, 21]);
}
