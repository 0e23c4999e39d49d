//! What a frame window leaves behind: only acknowledged prefixes deleted
//! (records left for TLS hold back what follows), nothing lost and no
//! counter reused across a kill, keys rotated durably, configuration
//! stored or left pending for TLS.

use std::panic::{AssertUnwindSafe, catch_unwind};

use flotta_proto::payload::Payload;

use super::*;

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
fn kills_mid_window_lose_no_record_fold_no_heartbeat_twice_reuse_no_counter() {
    for crash_at in [0, 1, 2, 4, 7] {
        let dir = tempfile::tempdir().unwrap();
        frame_keys::store(dir.path(), &keys(1)).unwrap();
        let mut server = TestServer::new(keys(1));
        let mut payloads: Vec<Payload> = (0..25).map(log).collect();
        payloads.insert(0, heartbeat(50));
        payloads.insert(3, heartbeat(50));
        payloads.insert(10, event(700));
        payloads.push(heartbeat(40));
        let mut recs = Vec::new();
        let mut runs = Vec::new();
        // Three runs killed in the middle of a window, more heartbeats
        // queued before each restart, then a run that completes.
        for kill in [Some(crash_at), Some(crash_at + 1), Some(crash_at), None] {
            let before = server.fresh.len();
            // Restart: queue, keys, counters and groups from disk only.
            let q = open_queue(dir.path());
            recs.extend(push(&q, &payloads));
            payloads = vec![heartbeat(30), log(99), heartbeat(31)];
            let mut state = FrameState::default();
            let mut carrier = FakeCarrier::new(&mut server, 200);
            carrier.crash_at = kill.map(|k| carrier.transmissions + k);
            let run = catch_unwind(AssertUnwindSafe(|| {
                window(dir.path(), &q, &mut carrier, &mut state, None)
            }));
            match (kill, run) {
                // Killed, or done before the transmission to die at.
                (Some(_), Err(_) | Ok(Ok(_))) => {}
                (None, Ok(Ok(_))) => assert!(queued(&q).is_empty()),
                (_, run) => panic!("crash at {crash_at}: {:?}", run.map(|_| ())),
            }
            runs.push(server.fresh[before..].to_vec());
        }
        let others: Vec<_> = recs
            .iter()
            .filter(|(_, b)| !matches!(Payload::decode(b), Ok(Payload::Heartbeat(_))))
            .cloned()
            .collect();
        assert_stored(&server, &others);
        assert_every_record_once(&server, recs.len() as u64);
        for pair in runs.windows(2) {
            let last = pair[0].iter().map(|(_, c)| *c).max().unwrap_or(0);
            assert!(
                pair[1].iter().all(|(_, c)| *c > last),
                "crash at {crash_at}: {runs:?}"
            );
        }
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
