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
