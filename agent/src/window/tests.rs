//! Windows over real UDP on 127.0.0.1: a frame window whose first
//! datagrams are dropped, and whole `run --once` runs (UDP only, no TLS;
//! without keys; TLS failing over to UDP), against a server thread built
//! from the proto API (`frames/test_server.rs`). Plus the window's log line.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use flotta_proto::payload::Payload;

use super::*;
use crate::carrier::{Traffic, UdpCarrier, UdpConfig};
use crate::frames::test_server::{DEVICE, TestServer, keys};
use crate::frames::tests::{
    assert_counters_sound, assert_stored, heartbeat, log, open_queue, push, queued, window,
};

/// A frame server on a UDP socket of 127.0.0.1 that drops the first `drop`
/// datagrams; stopped by the flag, it hands back its state and how many
/// datagrams it received.
struct UdpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(TestServer, u64)>,
}

impl UdpServer {
    fn start(drop: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut server = TestServer::new(keys(1));
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let mut buf = [0u8; 2048];
            let mut received = 0;
            while !stopped.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                received += 1;
                if received <= drop {
                    continue;
                }
                if let Some(answer) = server.handle(&buf[..n]) {
                    socket.send_to(&answer, from).unwrap();
                }
            }
            (server, received)
        });
        Self { addr, stop, thread }
    }

    fn stop(self) -> (TestServer, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

fn udp(addr: SocketAddr) -> UdpConfig {
    UdpConfig {
        server_addr: addr.to_string(),
        frame_bytes: 300,
        answer_timeout_ms: 200,
        attempts: 5,
        ..UdpConfig::default()
    }
}

#[test]
fn a_frame_window_over_real_udp_survives_dropped_datagrams() {
    let dir = tempfile::tempdir().unwrap();
    crate::frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    push(&q, &[heartbeat(60), heartbeat(61)]);
    let logs = push(&q, &(0..20).map(log).collect::<Vec<_>>());
    let server = UdpServer::start(2);
    let mut carrier = UdpCarrier::open(&udp(server.addr)).unwrap();
    let report = window(
        dir.path(),
        &q,
        &mut carrier,
        &mut FrameState::default(),
        None,
    );
    let (server, received) = server.stop();
    let report = report.unwrap();
    assert_eq!((report.carrier, report.records_acked), ("udp", 22));
    assert!(
        report.traffic.sent >= u64::from(report.frames) + 2,
        "{report:?}"
    );
    // A retransmission racing the last answer may still be unread at stop.
    assert!(received >= u64::from(report.frames) + 2 && received <= report.traffic.sent);
    assert!(queued(&q).is_empty());
    assert_stored(&server, &logs);
    assert!(server.deliveries.values().all(|n| *n == 1));
    assert_counters_sound(&server);
}

fn once_config(dir: &Path, links: Vec<LinkKind>, addr: SocketAddr) -> AgentConfig {
    AgentConfig {
        device_id: DEVICE.into(),
        data_dir: dir.to_path_buf(),
        // Nothing there: any TLS attempt fails before the network.
        ca_cert_path: dir.join("no-ca.pem"),
        links,
        udp: udp(addr),
        ..AgentConfig::default()
    }
}

/// The classes of what the server stored, in `seq` order.
fn stored_kinds(server: &TestServer) -> Vec<&'static str> {
    server
        .records
        .values()
        .map(|(_, _, bytes)| match Payload::decode(bytes) {
            Ok(Payload::Heartbeat(_)) => "heartbeat",
            Ok(Payload::Event(_)) => "event",
            Ok(Payload::Log(_)) => "log",
            Ok(Payload::Summary(_)) => "summary",
            Err(_) => "garbage",
        })
        .collect()
}

#[test]
fn run_once_over_udp_needs_no_tls_at_all() {
    let dir = tempfile::tempdir().unwrap();
    crate::frame_keys::store(dir.path(), &keys(1)).unwrap();
    let server = UdpServer::start(1);
    let cfg = once_config(dir.path(), vec![LinkKind::Udp], server.addr);
    let result = crate::runtime::run(cfg, true);
    let (server, _) = server.stop();
    result.unwrap();
    // AgentStarted, then the one heartbeat (alone: sent as it is).
    assert_eq!(stored_kinds(&server), ["event", "heartbeat"]);
    assert!(queued(&open_queue(dir.path())).is_empty());
    assert!(
        !dir.path().join("identity").exists(),
        "no enrolment, no TLS"
    );
}

#[test]
fn run_once_over_udp_without_keys_fails_clearly_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = UdpServer::start(0);
    let cfg = once_config(dir.path(), vec![LinkKind::Udp], server.addr);
    let err = crate::runtime::run(cfg, true).unwrap_err().to_string();
    let (_, received) = server.stop();
    assert!(
        err.contains("no frame context: provision one with flotta-server provision"),
        "{err}"
    );
    assert_eq!(received, 0);
    // AgentStarted, the heartbeat and the window's failure log.
    assert_eq!(queued(&open_queue(dir.path())).len(), 3);
}

#[test]
fn a_failing_tls_link_falls_through_to_udp_in_the_same_window() {
    let dir = tempfile::tempdir().unwrap();
    crate::frame_keys::store(dir.path(), &keys(1)).unwrap();
    let server = UdpServer::start(0);
    let cfg = once_config(dir.path(), vec![LinkKind::Tls, LinkKind::Udp], server.addr);
    let result = crate::runtime::run(cfg, true);
    let (server, _) = server.stop();
    result.unwrap();
    assert_eq!(stored_kinds(&server), ["event", "heartbeat"]);
    assert!(queued(&open_queue(dir.path())).is_empty());
}

#[test]
fn the_log_line_names_the_carriers() {
    let tls = WindowReport {
        requests: 2,
        records_acked: 7,
        body_bytes: 900,
        ..WindowReport::default()
    };
    let frames = FrameReport {
        carrier: "udp",
        frames: 3,
        records_acked: 12,
        traffic: Traffic {
            sent: 4,
            bytes_up: 1500,
            bytes_down: 60,
            ..Traffic::default()
        },
        left_for_tls: 1,
        ..FrameReport::default()
    };
    let only_tls = WindowOutcome {
        tls: Some(tls.clone()),
        frames: None,
    };
    assert_eq!(
        only_tls.describe(),
        "window: 2 requests, 7 records acknowledged, 900 body bytes (tls)"
    );
    let both = WindowOutcome {
        tls: Some(tls),
        frames: Some(frames),
    };
    let frame_only = WindowOutcome {
        tls: None,
        frames: Some(FrameReport {
            logs_discarded: 5,
            min_log_level: crate::frames::MinLogLevel::Warn,
            ..both.frames.clone().unwrap()
        }),
    };
    assert!(
        frame_only
            .describe()
            .ends_with(", 1 records left for tls, 5 logs below warn not sent (udp)"),
        "{}",
        frame_only.describe()
    );
    assert_eq!(
        both.describe(),
        "window: 3 frames, 12 records acknowledged, 1500 bytes up, 60 bytes down, \
         4 datagrams sent, 1 records left for tls (udp); then 2 requests, \
         7 records acknowledged, 900 body bytes (tls)"
    );
}
