//! A device speaking sealed frames over UDP, built from the proto API
//! exactly as an agent would: keys from the batch route, one datagram = one
//! sealed uplink frame with key id, one sealed answer back.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use flotta_proto::batch::{BATCH_FORMAT_VERSION, BatchRequest, WireRecord};
use flotta_proto::frame::{
    Ack, ConfigEncoding, DownItem, FrameContext, FrameType, Header, ItemWriter, KeyId, RecordHead,
    Role, UpItem, down_items, open, seal,
};
use flotta_proto::frame_keys::FrameKeys;
use flotta_server::device_id::DeviceId;
use flotta_server::testing::{TestOptions, TestServer, spawn};

use super::{Client, batch_response, onboard};

/// How long a test waits for an answer or a counter (a generous limit on
/// a state, never a verdict by itself).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// An owned downlink item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    Ack(Ack),
    Config {
        version: String,
        encoding: ConfigEncoding,
        body: Vec<u8>,
    },
    Pending(String),
    Rekey(FrameKeys),
    /// A part of a larger item: id, total, offset, data.
    Part(u32, u32, u32, Vec<u8>),
}

/// An opened answer: its header and items.
#[derive(Debug)]
pub struct Answer {
    pub header: Header,
    pub items: Vec<Down>,
    pub len: usize,
}

impl Answer {
    pub fn ack(&self) -> Ack {
        match self.items.first() {
            Some(Down::Ack(a)) => *a,
            other => panic!("answer does not start with an ack: {other:?}"),
        }
    }

    pub fn rekey(&self) -> Option<&FrameKeys> {
        self.items.iter().find_map(|i| match i {
            Down::Rekey(k) => Some(k),
            _ => None,
        })
    }
}

pub struct FrameDevice {
    pub id: String,
    pub keys: FrameKeys,
    ctx: FrameContext,
    sock: UdpSocket,
    pub server: SocketAddr,
}

pub fn context(id: &str, keys: &FrameKeys) -> FrameContext {
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

/// The frame keys the batch route hands a device holding `epoch`.
pub fn keys_by_batch(client: &Client, id: &str, epoch: Option<u32>) -> Option<FrameKeys> {
    let req = BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: String::new(),
        records: vec![],
        frame_epoch: epoch,
        upload_interval_seconds: None,
    };
    batch_response(&client.batch(id, &req)).frame_keys
}

impl FrameDevice {
    pub fn new(id: &str, keys: FrameKeys, server: &TestServer) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(PATIENCE)).unwrap();
        Self {
            id: id.to_owned(),
            ctx: context(id, &keys),
            keys,
            sock,
            server: server.udp_addr.expect("server with UDP"),
        }
    }

    /// Switch to other keys (a rotation).
    pub fn rekey(&mut self, keys: FrameKeys) {
        self.ctx = context(&self.id, &keys);
        self.keys = keys;
    }

    /// The plaintext: status, then `items`.
    pub fn plaintext(config_version: &str, low_water: u32, items: &[UpItem<'_>]) -> Vec<u8> {
        Self::plaintext_asking(config_version, low_water, false, items)
    }

    /// The plaintext: status (asking for an answer or not), then `items`.
    pub fn plaintext_asking(
        config_version: &str,
        low_water: u32,
        ack_wanted: bool,
        items: &[UpItem<'_>],
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 70_000];
        let mut w = ItemWriter::new(&mut buf);
        w.push(&UpItem::Status {
            config_version,
            low_water,
            ack_wanted,
            partial: None,
        })
        .unwrap();
        for i in items {
            w.push(i).unwrap();
        }
        w.written().to_vec()
    }

    /// An uplink frame with key id.
    pub fn seal(&self, counter: u32, plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; plaintext.len() + 16];
        let n = seal(
            &self.ctx,
            FrameType::UplinkData,
            counter,
            true,
            plaintext,
            &mut out,
        )
        .unwrap();
        out.truncate(n);
        out
    }

    /// A frame of `items` after a status saying version `"1"` and low water `counter`.
    pub fn frame(&self, counter: u32, items: &[UpItem<'_>]) -> Vec<u8> {
        self.seal(counter, &Self::plaintext("1", counter, items))
    }

    pub fn send(&self, datagram: &[u8]) {
        self.sock.send_to(datagram, self.server).unwrap();
    }

    /// The next datagram, within [`PATIENCE`].
    pub fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 70_000];
        let (n, from) = self.sock.recv_from(&mut buf).expect("an answer");
        assert_eq!(from, self.server, "answered from the listening socket");
        buf.truncate(n);
        buf
    }

    /// Send `datagram` and open the answer.
    pub fn exchange(&self, datagram: &[u8]) -> Answer {
        self.send(datagram);
        let raw = self.recv();
        self.open(&raw)
    }

    /// Open an answer with the current context.
    pub fn open(&self, raw: &[u8]) -> Answer {
        let mut out = vec![0u8; raw.len()];
        let opened = open(&self.ctx, raw, &mut out).expect("a sealed answer");
        assert_eq!(opened.header.frame_type, FrameType::DownlinkAnswer);
        assert_eq!(opened.header.key_id, None, "answers carry no key id");
        let items = down_items(opened.plaintext)
            .map(|i| match i.unwrap() {
                DownItem::Ack(a) => Down::Ack(a),
                DownItem::Config {
                    version,
                    encoding,
                    body,
                } => Down::Config {
                    version: version.to_owned(),
                    encoding,
                    body: body.to_vec(),
                },
                DownItem::ConfigPending { version } => Down::Pending(version.to_owned()),
                DownItem::Rekey {
                    key_id,
                    epoch,
                    master_secret,
                    salt,
                } => Down::Rekey(FrameKeys {
                    key_id: key_id.0,
                    epoch,
                    master_secret: *master_secret,
                    master_salt: salt.to_vec(),
                }),
                DownItem::Part {
                    id,
                    total,
                    offset,
                    data,
                } => Down::Part(id, total, offset, data.to_vec()),
            })
            .collect();
        Answer {
            header: opened.header,
            items,
            len: raw.len(),
        }
    }

    /// Whether a datagram is waiting (non-blocking look).
    pub fn has_datagram(&self) -> bool {
        self.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        let got = self.sock.recv_from(&mut buf).is_ok();
        self.sock.set_nonblocking(false).unwrap();
        got
    }
}

/// Wait until `condition` holds, polling, within [`PATIENCE`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Send `datagram`, wait until the server counted it as `result`, and
/// check that nothing was sent back.
pub fn dropped(s: &TestServer, dev: &FrameDevice, datagram: &[u8], result: &str) {
    let (before, out) = (s.frames(result), s.datagrams("out"));
    dev.send(datagram);
    eventually(&format!("a frame counted {result}"), || {
        s.frames(result) > before
    });
    assert_eq!(s.datagrams("out"), out, "{result}: nothing sent");
    assert!(!dev.has_datagram(), "{result}: no answer");
}

/// A server listening for frames, with `config_toml` applied.
pub fn udp_server(config_toml: &str) -> TestServer {
    spawn(TestOptions {
        udp: true,
        config_toml: config_toml.into(),
        ..TestOptions::default()
    })
    .unwrap()
}

pub fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

pub fn head(r: &WireRecord) -> RecordHead {
    RecordHead {
        seq: r.seq,
        at_ms: r.at_ms,
        class: r.class as u8,
    }
}

pub fn item(r: &WireRecord) -> UpItem<'_> {
    UpItem::Record {
        head: head(r),
        payload: &r.payload,
    }
}

/// An onboarded device with frame keys from the batch route.
pub fn frame_device(s: &TestServer, name: &str) -> (Client, FrameDevice) {
    let client = Client::new(s, &onboard(s, name));
    let keys = keys_by_batch(&client, name, None).expect("frame keys in the batch answer");
    assert_eq!(
        keys_by_batch(&client, name, Some(keys.epoch)),
        None,
        "keys only when the device's epoch differs"
    );
    let dev = FrameDevice::new(name, keys, s);
    (client, dev)
}

pub fn seqs(s: &TestServer, name: &str) -> Vec<u64> {
    s.store()
        .records(&id(name), None, 1000)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect()
}
