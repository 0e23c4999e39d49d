//! Frame-window tests against [`TestServer`] (the protocol as the server
//! speaks it, from the proto API) behind a [`FakeCarrier`] that loses,
//! duplicates, replays and forges datagrams, and one over real UDP.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;

use flotta_proto::frame::{Ack, DownItem, FrameContext, FrameType, ItemWriter, KeyId, Role, seal};
use flotta_proto::payload::{Event, Level, LogLine, Payload};

use super::test_server::{DEVICE, FakeCarrier, TestServer, keys};
use super::*;
use crate::clock::ManualClock;
use crate::desired::Desired;
use crate::frame_keys;
use crate::queue::{DiskSpace, Durability, Queue, QueueConfig};

struct Plenty;
impl DiskSpace for Plenty {
    fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }
}

type TestQueue = Queue<ManualClock, Plenty>;

fn open_queue(dir: &Path) -> Mutex<TestQueue> {
    let clock = ManualClock::new(1_700_000_000_000);
    let (q, _) = Queue::open(&dir.join("queue"), QueueConfig::default(), clock, Plenty).unwrap();
    Mutex::new(q)
}

fn params(dir: &Path, tls_limit: Option<usize>) -> FrameWindowParams {
    FrameWindowParams {
        data_dir: dir.to_path_buf(),
        device_id: DEVICE.into(),
        tls_limit,
        round_bytes: 64 * 1024,
    }
}

fn heartbeat(battery: u8) -> Payload {
    crate::heartbeat::build(&crate::queue::Stats::default(), 60, Some(battery))
}

fn log(i: usize) -> Payload {
    Payload::Log(LogLine {
        source: "test".into(),
        level: Level::Info,
        message: format!("log line number {i:04}"),
    })
}

fn event(len: usize) -> Payload {
    Payload::Event(Event {
        reason: "Big".into(),
        message: "x".repeat(len),
        level: Level::Warn,
    })
}

/// Append `payloads`; returns their (seq, payload bytes).
fn push(q: &Mutex<TestQueue>, payloads: &[Payload]) -> Vec<(u64, Vec<u8>)> {
    let mut q = q.lock().unwrap();
    payloads
        .iter()
        .map(|p| {
            let bytes = p.encode();
            (
                q.append(p.class(), &bytes, Durability::Durable).unwrap(),
                bytes,
            )
        })
        .collect()
}

fn window(
    dir: &Path,
    q: &Mutex<TestQueue>,
    carrier: &mut dyn FrameCarrier,
    state: &mut FrameState,
    tls_limit: Option<usize>,
) -> Result<FrameReport, FrameWindowError> {
    let desired = Desired::load(dir);
    run_frame_window(q, carrier, state, &params(dir, tls_limit), &desired)
}

/// Every record of `expected` is stored with its bytes.
fn assert_stored(server: &TestServer, expected: &[(u64, Vec<u8>)]) {
    for (seq, bytes) in expected {
        let stored = server.records.get(seq).map(|(_, _, b)| b);
        assert_eq!(stored, Some(bytes), "record {seq}");
    }
}

/// Retransmissions repeat a frame's bytes exactly; fresh counters are
/// unique per epoch; every status's low water is its own counter.
fn assert_counters_sound(server: &TestServer) {
    let mut by_counter: BTreeMap<(u32, u32), &Vec<u8>> = BTreeMap::new();
    for (epoch, counter, bytes) in &server.seen {
        let first = by_counter.entry((*epoch, *counter)).or_insert(bytes);
        assert_eq!(
            *first, bytes,
            "counter {counter} sealed two different frames"
        );
    }
    let unique: BTreeSet<_> = server.fresh.iter().collect();
    assert_eq!(unique.len(), server.fresh.len(), "a counter was reused");
    for ((_, counter, _), (_, low_water)) in server.seen.iter().zip(&server.statuses) {
        assert_eq!(
            counter, low_water,
            "one frame in flight: low water = its counter"
        );
    }
}

fn queued(q: &Mutex<TestQueue>) -> Vec<u64> {
    let mut q = q.lock().unwrap();
    q.read_batch(usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

#[test]
fn every_record_is_delivered_once_across_lost_datagrams_and_heartbeats_fold() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let hbs = push(&q, &[heartbeat(90), heartbeat(70)]);
    let logs = push(&q, &(0..30).map(log).collect::<Vec<_>>());
    let last_hb = push(&q, &[heartbeat(80)]);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    carrier.lose_up = [0, 3, 7, 8].into();
    carrier.lose_down = [1, 5, 11].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.records_acked, 33);
    assert_eq!(report.heartbeats_folded, 3);
    assert!(report.frames > 3, "{report:?}");
    assert_eq!(report.traffic.sent, carrier.transmissions as u64);
    assert!(queued(&q).is_empty());
    assert_stored(&server, &logs);
    // The summary, under the last heartbeat, first of all.
    let (summary_seq, _) = last_hb[0];
    let (_, class, bytes) = &server.records[&summary_seq];
    assert_eq!(*class, 0);
    let Ok(Payload::Summary(s)) = Payload::decode(bytes) else {
        panic!("not a summary")
    };
    assert_eq!((s.heartbeats, s.first_seq), (3, hbs[0].0));
    assert_eq!(
        (s.battery_min_percent, s.battery_max_percent),
        (Some(70), Some(90))
    );
    assert_eq!(server.records.len(), 31, "30 logs and one summary");
    assert!(
        server.deliveries.values().all(|n| *n == 1),
        "{:?}",
        server.deliveries
    );
    assert_eq!(server.seen[0].1, 0);
    assert_counters_sound(&server);
}

#[test]
fn forged_duplicated_and_late_answers_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..12).map(log).collect::<Vec<_>>());
    // An attacker knows the key id (it is on the wire) but not the secret:
    // an answer that acks everything, sealed under its own guess.
    let k = keys(1);
    let forger = FrameContext::new(
        Role::Server,
        KeyId(k.key_id),
        1,
        &[0x99; 32],
        &k.master_salt,
        DEVICE.as_bytes(),
    )
    .unwrap();
    let mut plain = [0u8; 32];
    let mut w = ItemWriter::new(&mut plain);
    w.push(&DownItem::Ack(Ack {
        below: 1 << 24,
        bitmap: 0,
    }))
    .unwrap();
    let len = w.len();
    let mut forged = vec![0u8; 64];
    let n = seal(
        &forger,
        FrameType::DownlinkAnswer,
        0,
        false,
        &plain[..len],
        &mut forged,
    )
    .unwrap();
    forged.truncate(n);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 160);
    carrier.inject = vec![forged, vec![0x20; 40], Vec::new()];
    carrier.replay_old_answers = true;
    carrier.lose_down = [2].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(
        report.traffic.ignored >= 3 * u64::from(report.frames),
        "{report:?}"
    );
    assert!(queued(&q).is_empty());
    assert_stored(&server, &logs);
    assert!(server.deliveries.values().all(|n| *n == 1));
    assert_counters_sound(&server);
}

#[test]
fn a_record_larger_than_a_frame_goes_in_fragments() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let recs = push(&q, &[log(1), event(5000), log(2)]);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 300);
    carrier.lose_up = [4].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert!(report.frames >= 5000 / 284, "{report:?}");
    assert_eq!((report.records_acked, report.left_for_tls), (3, 0));
    assert_stored(&server, &recs);
    assert!(queued(&q).is_empty());
    assert_counters_sound(&server);
}

#[test]
fn records_too_large_wait_for_tls_and_hold_back_only_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let before = push(&q, &(0..4).map(log).collect::<Vec<_>>());
    let big = push(&q, &[event(3000)]);
    let after = push(&q, &(4..7).map(log).collect::<Vec<_>>());
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = FakeCarrier::new(&mut server, 400);
    let report = window(dir.path(), &q, &mut carrier, &mut state, Some(2000)).unwrap();
    assert_eq!((report.left_for_tls, report.records_acked), (1, 4));
    assert_stored(&server, &before);
    assert_stored(&server, &after);
    assert!(!server.records.contains_key(&big[0].0), "left for TLS");
    let held: Vec<u64> = big.iter().chain(&after).map(|(s, _)| *s).collect();
    assert_eq!(queued(&q), held, "deleted: only the acknowledged prefix");

    // The next window does not send the held-back records again.
    let mut carrier = FakeCarrier::new(&mut server, 400);
    let report = window(dir.path(), &q, &mut carrier, &mut state, Some(2000)).unwrap();
    assert_eq!((report.frames, report.records_acked), (1, 0), "status only");
    assert!(server.deliveries.values().all(|n| *n == 1));
    // A TLS window took the big record and everything after it.
    q.lock().unwrap().ack(after[2].0).unwrap();
    let mut carrier = FakeCarrier::new(&mut server, 400);
    window(dir.path(), &q, &mut carrier, &mut state, Some(2000)).unwrap();
    assert!(state.delivered.is_empty(), "forgotten once deleted");
}

#[test]
fn a_kill_mid_window_loses_no_record_and_reuses_no_counter() {
    for crash_at in [0, 1, 4, 9] {
        let dir = tempfile::tempdir().unwrap();
        frame_keys::store(dir.path(), &keys(1)).unwrap();
        let mut payloads: Vec<Payload> = (0..25).map(log).collect();
        payloads.insert(3, heartbeat(50));
        payloads.push(heartbeat(40));
        payloads.insert(10, event(700));
        let mut server = TestServer::new(keys(1));
        let recs = {
            let q = open_queue(dir.path());
            let recs = push(&q, &payloads);
            let mut state = FrameState::default();
            let mut carrier = FakeCarrier::new(&mut server, 200);
            carrier.crash_at = Some(crash_at);
            let killed = catch_unwind(AssertUnwindSafe(|| {
                window(dir.path(), &q, &mut carrier, &mut state, None)
            }));
            assert!(killed.is_err(), "crash at {crash_at}");
            recs
        };
        let first_run = server.fresh.clone();
        // Restart: queue and counters from disk only.
        let q = open_queue(dir.path());
        let mut state = FrameState::default();
        let mut carrier = FakeCarrier::new(&mut server, 200);
        window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
        assert!(queued(&q).is_empty());
        let logs: Vec<_> = recs
            .iter()
            .filter(|(_, b)| !matches!(Payload::decode(b), Ok(Payload::Heartbeat(_))))
            .cloned()
            .collect();
        assert_stored(&server, &logs);
        let max_before = first_run.iter().map(|(_, c)| *c).max().unwrap_or(0);
        let second_run = &server.fresh[first_run.len()..];
        assert!(
            second_run.iter().all(|(_, c)| *c > max_before),
            "crash at {crash_at}: {first_run:?} then {second_run:?}"
        );
        assert_counters_sound(&server);
    }
}

#[test]
fn a_rekey_switches_to_the_new_epoch_even_when_its_answer_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..12).map(log).collect::<Vec<_>>());
    let mut server = TestServer::new(keys(1));
    server.rekey = Some(keys(2));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    carrier.lose_down = [0].into();
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.rekeyed_to_epoch, Some(2));
    assert_eq!(frame_keys::load(dir.path()).unwrap(), Some(keys(2)));
    assert_eq!(
        &server.fresh[..2],
        &[(1, 0), (2, 0)],
        "new epoch, new counters"
    );
    assert!(server.fresh[1..].iter().all(|(e, _)| *e == 2));
    assert!(dir.path().join("frame/counter-abcd0007-2").exists());
    assert_stored(&server, &logs);
    assert!(queued(&q).is_empty());
    assert_counters_sound(&server);
}

#[test]
fn configuration_is_applied_or_left_pending_for_tls() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    push(&q, &(0..8).map(log).collect::<Vec<_>>());
    let mut server = TestServer::new(keys(1));
    let json = r#"{"configuration":{"heartbeat":{"period_seconds":300}}}"#;
    server.config = Some(("v2".into(), json.into(), true));
    let mut carrier = FakeCarrier::new(&mut server, 160);
    let mut state = FrameState::default();
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    let d = report.config_updated.unwrap();
    assert_eq!(
        (d.version.as_str(), d.heartbeat_period_seconds()),
        ("v2", Some(300))
    );
    assert_eq!(Desired::load(dir.path()), d);
    let versions: Vec<&str> = server.statuses.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(versions[0], "");
    assert!(versions[1..].iter().all(|v| *v == "v2"), "{versions:?}");

    let huge: String = (0..2000)
        .map(|i| format!("{:x}", i * 7919 % 65521))
        .collect();
    server.config = Some(("v3".into(), format!("{{\"k\":\"{huge}\"}}"), false));
    let mut carrier = FakeCarrier::new(&mut server, 160);
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.config_pending.as_deref(), Some("v3"));
    assert_eq!(report.config_updated, None);
    assert_eq!(Desired::load(dir.path()).version, "v2");
}

#[test]
fn without_keys_the_window_says_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let q = open_queue(dir.path());
    push(&q, &[log(1)]);
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    let err = window(
        dir.path(),
        &q,
        &mut carrier,
        &mut FrameState::default(),
        None,
    )
    .unwrap_err();
    assert!(!err.is_retriable());
    assert!(err.to_string().contains("flotta-server provision"), "{err}");
    assert_eq!(carrier.transmissions, 0);
    assert_eq!(queued(&q).len(), 1);
}

#[test]
fn an_unanswered_frame_ends_the_window_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let logs = push(&q, &(0..10).map(log).collect::<Vec<_>>());
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    carrier.lose_up = (1..4).collect(); // the second frame, every attempt
    let mut state = FrameState::default();
    let err = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap_err();
    assert!(
        err.is_retriable() && err.to_string().starts_with("fake: no answer"),
        "{err}"
    );
    let left = queued(&q);
    assert!(!left.is_empty() && left.len() < 10, "{left:?}");
    let mut carrier = FakeCarrier::new(&mut server, 200);
    let report = window(dir.path(), &q, &mut carrier, &mut state, None).unwrap();
    assert_eq!(report.records_acked, left.len() as u64);
    assert_stored(&server, &logs);
    assert_counters_sound(&server);
}

#[test]
fn an_empty_queue_still_sends_one_status_frame() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let mut server = TestServer::new(keys(1));
    let mut carrier = FakeCarrier::new(&mut server, 200);
    let report = window(
        dir.path(),
        &q,
        &mut carrier,
        &mut FrameState::default(),
        None,
    )
    .unwrap();
    assert_eq!(
        (report.frames, report.records_acked, report.traffic.sent),
        (1, 0, 1)
    );
    assert_eq!(report.carrier, "fake");
    assert!(report.traffic.bytes_up > 16 && report.traffic.bytes_down > 12);
}

#[test]
fn over_real_udp_with_the_first_datagrams_dropped() {
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    push(&q, &[heartbeat(60), heartbeat(61)]);
    let logs = push(&q, &(0..20).map(log).collect::<Vec<_>>());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let server = std::thread::spawn(move || {
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
            if received <= 2 {
                continue; // the first two datagrams are lost
            }
            if let Some(answer) = server.handle(&buf[..n]) {
                socket.send_to(&answer, from).unwrap();
            }
        }
        (server, received)
    });
    let cfg = crate::carrier::UdpConfig {
        server_addr: addr.to_string(),
        frame_bytes: 300,
        answer_timeout_ms: 200,
        attempts: 5,
        ..Default::default()
    };
    let mut carrier = crate::carrier::UdpCarrier::open(&cfg).unwrap();
    let report = window(
        dir.path(),
        &q,
        &mut carrier,
        &mut FrameState::default(),
        None,
    );
    stop.store(true, Ordering::SeqCst);
    let (server, received) = server.join().unwrap();
    let report = report.unwrap();
    assert_eq!((report.carrier, report.records_acked), ("udp", 22));
    assert!(
        report.traffic.sent >= u64::from(report.frames) + 2,
        "{report:?}"
    );
    assert_eq!(received as u64, report.traffic.sent);
    assert!(queued(&q).is_empty());
    assert_stored(&server, &logs);
    assert!(server.deliveries.values().all(|n| *n == 1));
    assert_counters_sound(&server);
}
