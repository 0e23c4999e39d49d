//! The packing policy in whole windows: log lines below the level left for
//! TLS (and delivered by the next TLS window) or, on a frame-only device,
//! discarded, counted and never holding back later records; messages cut
//! at a character boundary, identically on every re-pack.

use flotta_proto::batch::BatchResponse;
use flotta_proto::payload::{Event, Level, LogLine, Payload};

use super::*;

fn log_at(i: usize, level: Level) -> Payload {
    Payload::Log(LogLine {
        source: "test".into(),
        level,
        message: format!("log line number {i:04}"),
    })
}

fn warn_and_up() -> PackPolicy {
    PackPolicy {
        min_log_level: MinLogLevel::Warn,
        max_text_bytes: 0,
    }
}

fn run(
    dir: &Path,
    q: &Mutex<TestQueue>,
    carrier: &mut dyn FrameCarrier,
    state: &mut FrameState,
    tls_limit: Option<usize>,
    policy: PackPolicy,
) -> Result<FrameReport, FrameWindowError> {
    let params = FrameWindowParams {
        policy,
        // Several rounds per window.
        round_bytes: 200,
        ..params(dir, tls_limit)
    };
    run_frame_window(q, carrier, state, &params, &Desired::load(dir))
}

/// A TLS window whose server acknowledges every batch; returns what it got.
fn tls_window(dir: &Path, q: &Mutex<TestQueue>) -> BTreeMap<u64, Vec<u8>> {
    let mut got = BTreeMap::new();
    crate::uplink::run_window_with(
        q,
        |req, _| {
            for r in &req.records {
                got.insert(r.seq, r.payload.clone());
            }
            let resp = BatchResponse {
                acked_through: req.records.last().map(|r| r.seq),
                config: None,
                frame_keys: None,
            };
            Ok((resp, 0))
        },
        64 * 1024,
        dir,
        None,
        &Desired::load(dir),
    )
    .unwrap();
    got
}

#[test]
fn logs_below_the_level_wait_for_tls_and_the_next_tls_window_delivers_them() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let recs = push(
        &q,
        &[
            log_at(0, Level::Warn),
            log_at(1, Level::Info),
            event(10),
            log_at(2, Level::Info),
            log_at(3, Level::Error),
        ],
    );
    let seqs: Vec<u64> = recs.iter().map(|(s, _)| *s).collect();
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = FakeCarrier::new(&mut server, 300);
    let report = run(
        dir.path(),
        &q,
        &mut carrier,
        &mut state,
        Some(16 * 1024),
        warn_and_up(),
    )
    .unwrap();
    assert_eq!(
        (
            report.left_for_tls,
            report.logs_discarded,
            report.records_acked
        ),
        (2, 0, 1),
        "the info lines hold back what follows them"
    );
    assert_stored(
        &server,
        &[recs[0].clone(), recs[2].clone(), recs[4].clone()],
    );
    assert!(!server.records.contains_key(&seqs[1]) && !server.records.contains_key(&seqs[3]));
    assert_eq!(queued(&q), seqs[1..]);
    assert_counters_sound(&server);

    // The TLS window sends them whole (and the rest again: deduplicated).
    let tls = tls_window(dir.path(), &q);
    assert_eq!(tls.get(&seqs[1]), Some(&recs[1].1));
    assert_eq!(tls.get(&seqs[3]), Some(&recs[3].1));
    assert!(queued(&q).is_empty());
}

#[test]
fn a_frame_only_device_discards_logs_below_the_level_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let levels = [Level::Info, Level::Warn, Level::Error];
    let mut payloads: Vec<Payload> = (0..30).map(|i| log_at(i, levels[i % 3])).collect();
    payloads.push(event(20));
    // The window's last rounds hold nothing that travels.
    payloads.extend((30..40).map(|i| log_at(i, Level::Warn)));
    let recs = push(&q, &payloads);
    let policy = PackPolicy {
        min_log_level: MinLogLevel::Error,
        max_text_bytes: 0,
    };
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    let mut carrier = FakeCarrier::new(&mut server, 200);
    carrier.lose_up = [1].into();
    carrier.lose_down = [3].into();
    let report = run(dir.path(), &q, &mut carrier, &mut state, None, policy).unwrap();
    assert_eq!(
        (
            report.logs_discarded,
            report.records_acked,
            report.left_for_tls
        ),
        (30, 11, 0)
    );
    assert!(
        queued(&q).is_empty(),
        "the first record discarded blocks none"
    );
    for (i, (seq, bytes)) in recs.iter().enumerate() {
        let travels = i == 30 || (i < 30 && i % 3 == 2);
        let stored = server.records.get(seq).map(|(_, _, b)| b);
        assert_eq!(stored, travels.then_some(bytes), "record {i}");
    }
    assert_counters_sound(&server);
    let line = crate::window::WindowOutcome {
        tls: None,
        frames: Some(report),
    }
    .describe();
    assert!(
        line.contains(", 30 logs below error not sent (fake)"),
        "{line}"
    );

    // A window with nothing that travels: one status frame, queue empty.
    push(
        &q,
        &(0..3).map(|i| log_at(i, Level::Info)).collect::<Vec<_>>(),
    );
    let mut carrier = FakeCarrier::new(&mut server, 200);
    let report = run(dir.path(), &q, &mut carrier, &mut state, None, policy).unwrap();
    assert_eq!(
        (report.frames, report.logs_discarded, report.records_acked),
        (1, 3, 0)
    );
    assert!(queued(&q).is_empty());
}

#[test]
fn messages_are_cut_at_a_character_boundary_identically_on_every_pack() {
    let dir = tempfile::tempdir().unwrap();
    frame_keys::store(dir.path(), &keys(1)).unwrap();
    let q = open_queue(dir.path());
    let reason = "Überhitzung".repeat(4); // longer than the limit: never cut
    let long = Payload::Event(Event {
        reason: reason.clone(),
        message: "é€".repeat(20), // 100 bytes: 2 + 3 per pair
        level: Level::Error,
    });
    let log_line = Payload::Log(LogLine {
        source: "s".into(),
        level: Level::Warn,
        message: "x".repeat(100),
    });
    let short = Payload::Event(Event {
        reason: "Fits".into(),
        message: "exactly forty-one bytes, not one more ok".into(),
        level: Level::Info,
    });
    let recs = push(&q, &[long.clone(), log_line, short]);
    let policy = PackPolicy {
        min_log_level: MinLogLevel::Info,
        max_text_bytes: 41,
    };
    // Whole, the event is over the TLS limit; cut, it travels in frames.
    let tls_limit = Some(120);
    assert!(recs[0].1.len() > 120);
    let mut server = TestServer::new(keys(1));
    let mut state = FrameState::default();
    // Every answer to the first frame is lost: the window fails after the
    // server stored its records; the next window packs them again.
    let mut carrier = FakeCarrier::new(&mut server, 300);
    carrier.lose_down = [0, 1, 2].into();
    run(dir.path(), &q, &mut carrier, &mut state, tls_limit, policy).unwrap_err();
    let still = q.lock().unwrap().read_batch(10, usize::MAX).unwrap();
    assert_eq!(still[0].payload, recs[0].1, "the queued record stays whole");
    let mut carrier = FakeCarrier::new(&mut server, 300);
    let report = run(dir.path(), &q, &mut carrier, &mut state, tls_limit, policy).unwrap();
    assert_eq!((report.records_acked, report.left_for_tls), (3, 0));
    assert!(queued(&q).is_empty());
    let seqs: Vec<u64> = recs.iter().map(|(s, _)| *s).collect();
    // The cut event went in the first frame (alone: the rounds are small)
    // and again, under a new counter, in the second window.
    assert_eq!(server.deliveries[&seqs[0]], 2, "{:?}", server.deliveries);
    assert_counters_sound(&server); // no conflicting bytes across the packs

    // 41 - 3 = 38 falls inside a "€": 7 pairs, an "é", the ellipsis.
    let expected = Payload::Event(Event {
        reason,
        message: format!("{}é…", "é€".repeat(7)),
        level: Level::Error,
    });
    let stored = |i: usize| server.records[&seqs[i]].2.clone();
    assert_eq!(stored(0), expected.encode());
    let Ok(Payload::Log(l)) = Payload::decode(&stored(1)) else {
        panic!("not a log line")
    };
    assert_eq!(
        (l.message.len(), l.level, l.source.as_str()),
        (41, Level::Warn, "s")
    );
    assert_eq!(l.message, format!("{}…", "x".repeat(38)));
    assert_eq!(stored(2), recs[2].1, "under the limit: untouched");
}
