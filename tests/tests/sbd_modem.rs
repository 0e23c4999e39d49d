//! The agent's Iridium SBD carrier against the simulated RockBLOCK 9603
//! (`flotta_e2e::modem::sbd`) on a pseudo-terminal, at byte level: the
//! real serial port code, AT engine and 9603 driver, an in-memory gateway
//! whose MT answers are scripted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotta_agent::carrier::serial::{Port, SerialPort};
use flotta_agent::carrier::{CarrierError, FrameCarrier, SbdCarrier, SbdConfig};
use flotta_e2e::modem::sbd::{MemoryGateway, SbdModem, SbdModemConfig, SessionOutcome};

fn modem(cfg: SbdModemConfig) -> (SbdModem, Arc<MemoryGateway>) {
    let gateway = Arc::new(MemoryGateway::new());
    // The server answers each frame with "ok:" + frame (its ack).
    gateway.respond_with(true, |mo| {
        let mut a = b"ok:".to_vec();
        a.extend_from_slice(&mo.data);
        Some(a)
    });
    let m = SbdModem::start(gateway.clone(), cfg).expect("start the simulated modem");
    (m, gateway)
}

fn carrier(m: &SbdModem) -> SbdCarrier {
    SbdCarrier::open(&SbdConfig {
        device: m.path().to_string_lossy().into_owned(),
        command_timeout_ms: 300,
        session_timeout_ms: 2_000,
        answer_timeout_ms: 3_000,
        retry_backoff_ms: 50,
        attempts: 3,
        ..SbdConfig::default()
    })
    .expect("open the simulated modem's tty")
}

/// Accepts exactly the answer to `frame`.
fn answer_to(frame: &[u8]) -> impl FnMut(&[u8]) -> bool + '_ {
    move |mt: &[u8]| mt.strip_prefix(b"ok:") == Some(frame)
}

#[test]
fn the_carrier_is_sbd_sized_and_names_the_device() {
    let (m, _) = modem(SbdModemConfig::default());
    let c = carrier(&m);
    assert_eq!(
        (c.name(), c.budget(), c.identifies_device()),
        ("sbd", 340, true)
    );
}

#[test]
fn a_frame_is_delivered_once_and_its_answer_fetched_on_the_ring_alert() {
    let (m, gw) = modem(SbdModemConfig::default());
    let mut c = carrier(&m);
    let answer = c.exchange(b"frame-1", &mut answer_to(b"frame-1")).unwrap();
    assert_eq!(answer, b"ok:frame-1");
    let delivered = gw.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].data, b"frame-1");
    let s = m.stats();
    assert_eq!(s.mo_buffer, None, "MO buffer cleared after delivery");
    assert_eq!((s.rings, s.sessions), (1, 2), "{:?}", s.commands);
    let sessions: Vec<_> = s
        .commands
        .iter()
        .filter(|c| c.starts_with("AT+SBDIX"))
        .collect();
    assert_eq!(sessions, ["AT+SBDIX", "AT+SBDIXA"]);
    let t = c.traffic();
    assert_eq!(
        (t.sent, t.bytes_up, t.received, t.bytes_down),
        (1, 7, 1, 10)
    );
    assert_eq!((t.sessions, t.credits), (2, s.credits));
}

#[test]
fn failed_sessions_are_retried_with_identical_bytes_after_the_back_off() {
    let (m, gw) = modem(SbdModemConfig::default());
    m.script_sessions([SessionOutcome::Fail(32), SessionOutcome::Fail(35)]);
    let mut c = carrier(&m);
    let frame = [0xa5u8; 60];
    let t0 = Instant::now();
    let answer = c.exchange(&frame, &mut answer_to(&frame)).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(100), "two back-offs");
    assert_eq!(&answer[3..], &frame);
    let s = m.stats();
    assert_eq!(
        s.mo_written,
        vec![frame.to_vec(); 3],
        "identical bytes each time"
    );
    assert_eq!(gw.delivered().len(), 1);
    // Failed sessions cost nothing: 2 credits for 60 bytes up, 2 for 63 down.
    assert_eq!((s.sessions, s.successful_sessions, s.credits), (4, 2, 4));
    assert_eq!((c.traffic().sent, c.traffic().credits), (3, 4));
}

#[test]
fn when_every_session_fails_the_error_names_the_last_status() {
    let (m, gw) = modem(SbdModemConfig::default());
    m.script_sessions([
        SessionOutcome::Fail(32),
        SessionOutcome::Fail(18),
        SessionOutcome::Fail(18),
    ]);
    let mut c = carrier(&m);
    let err = c.exchange(b"lost", &mut |_: &[u8]| true).unwrap_err();
    assert!(
        matches!(
            err,
            CarrierError::SessionFailed {
                attempts: 3,
                mo_status: 18
            }
        ) && err.is_retriable(),
        "{err}"
    );
    assert!(gw.delivered().is_empty());
    assert_eq!((m.stats().credits, c.traffic().credits), (0, 0));
}

#[test]
fn the_mo_buffer_is_cleared_so_nothing_is_sent_twice() {
    let (m, gw) = modem(SbdModemConfig {
        momsn: 65_535,
        ..SbdModemConfig::default()
    });
    let mut c = carrier(&m);
    for f in [&b"first"[..], b"second"] {
        c.exchange(f, &mut answer_to(f)).unwrap();
        assert_eq!(m.stats().mo_buffer, None);
    }
    let delivered: Vec<_> = gw
        .delivered()
        .into_iter()
        .map(|d| (d.momsn, d.data))
        .collect();
    // Four sessions ran (two answered rings): only two carried a message,
    // and MOMSN wrapped.
    assert_eq!(
        delivered,
        [(65_535, b"first".to_vec()), (0, b"second".to_vec())]
    );
    assert_eq!(m.stats().sessions, 4);
    assert_eq!(
        m.stats()
            .commands
            .iter()
            .filter(|c| *c == "AT+SBDD0")
            .count(),
        2
    );
}

#[test]
fn mts_for_older_frames_are_skipped_queued_ones_followed_then_the_ring_answered() {
    let (m, gw) = modem(SbdModemConfig::default());
    // Without flush (which would drop the older ones when the answer comes).
    gw.respond_with(false, |mo| Some([&b"ok:"[..], &mo.data].concat()));
    gw.queue_mt(b"ok:older-1", false).unwrap();
    gw.queue_mt(b"ok:older-2", false).unwrap();
    let mut c = carrier(&m);
    let answer = c.exchange(b"new", &mut answer_to(b"new")).unwrap();
    assert_eq!(answer, b"ok:new");
    let t = c.traffic();
    assert_eq!((t.received, t.ignored), (3, 2), "{t:?}");
    let sessions: Vec<_> = m
        .stats()
        .commands
        .into_iter()
        .filter(|c| c.starts_with("AT+SBDIX"))
        .collect();
    // SBDIX brings older-1 (one more queued), SBDIXA older-2 (the answer
    // queued meanwhile), SBDIXA the answer.
    assert_eq!(sessions, ["AT+SBDIX", "AT+SBDIXA", "AT+SBDIXA"]);
    assert_eq!(gw.delivered().len(), 1);
}

#[test]
fn without_a_ring_the_wait_ends_at_the_answer_timeout() {
    let (m, gw) = modem(SbdModemConfig::default());
    gw.respond_with(true, |_| None);
    let mut c = carrier(&m);
    let t0 = Instant::now();
    let err = c.exchange(b"unanswered", &mut |_: &[u8]| true).unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, CarrierError::NoAnswer { .. }), "{err}");
    assert!(
        (Duration::from_millis(2_900)..Duration::from_secs(6)).contains(&took),
        "{took:?}"
    );
    assert_eq!((gw.delivered().len(), m.stats().sessions), (1, 1));
}

#[test]
fn a_checksum_mismatch_on_the_serial_line_is_written_again() {
    let (m, gw) = modem(SbdModemConfig::default());
    m.corrupt_writes(1);
    let mut c = carrier(&m);
    c.exchange(b"noisy", &mut answer_to(b"noisy")).unwrap();
    assert_eq!(m.stats().checksum_errors, 1);
    assert_eq!(gw.delivered()[0].data, b"noisy");
    // A line that stays noisy fails the exchange before any session.
    m.corrupt_writes(10);
    let err = c.exchange(b"noisier", &mut |_: &[u8]| true).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!((gw.delivered().len(), m.stats().checksum_errors), (1, 4));
}

#[test]
fn a_hung_modem_is_reset_and_reported_within_its_deadline() {
    let (m, gw) = modem(SbdModemConfig::default());
    let mut c = carrier(&m);
    c.exchange(b"before", &mut answer_to(b"before")).unwrap();

    // Silent for one command: the reset brings it back, the frame fails.
    m.ignore_commands(1);
    let err = c.exchange(b"lost", &mut |_: &[u8]| true).unwrap_err();
    assert!(
        matches!(&err, CarrierError::Modem(e) if e.ends_with("modem reset")),
        "{err}"
    );
    assert_eq!(m.stats().resets, 1);
    c.exchange(b"after", &mut answer_to(b"after")).unwrap();

    // Silent for good: reported, not hung (a few command timeouts).
    m.set_hung(true);
    let t0 = Instant::now();
    let err = c.exchange(b"hung", &mut |_: &[u8]| true).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(
        matches!(&err, CarrierError::Modem(e) if e.contains("reset failed")),
        "{err}"
    );
    assert!(err.is_retriable());
    m.set_hung(false);
    c.exchange(b"recovered", &mut answer_to(b"recovered"))
        .unwrap();
    let data: Vec<_> = gw.delivered().into_iter().map(|d| d.data).collect();
    assert_eq!(
        data,
        [b"before".to_vec(), b"after".to_vec(), b"recovered".to_vec()]
    );
}

#[test]
fn credits_are_counted_per_started_50_bytes_of_each_message() {
    let (m, gw) = modem(SbdModemConfig::default());
    gw.respond_with(true, |mo| Some(vec![mo.data[0]; 101]));
    let mut c = carrier(&m);
    let frame = [7u8; 100];
    c.exchange(&frame, &mut |mt: &[u8]| mt.len() == 101)
        .unwrap();
    // 100 bytes up: 2 credits; 101 down in a mailbox session: 3.
    assert_eq!((c.traffic().credits, m.stats().credits), (5, 5));
    let frame = [8u8; 51];
    c.exchange(&frame, &mut |mt: &[u8]| mt.len() == 101)
        .unwrap();
    assert_eq!((c.traffic().credits, m.stats().credits), (5 + 2 + 3, 10));
    assert_eq!(c.traffic().sessions, 4);
    assert!(matches!(
        c.exchange(&[0u8; 341], &mut |_: &[u8]| true),
        Err(CarrierError::TooLarge {
            len: 341,
            budget: 340
        })
    ));
}

/// Bytes the modem sends until `want` has been read (or 2 s passed).
fn read_until_contains(port: &mut impl Port, want: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.windows(want.len()).any(|w| w == want) {
        let n = port.read_until(&mut buf, deadline).expect("read the pty");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn the_simulator_speaks_the_9603_byte_protocol() {
    let gw = Arc::new(MemoryGateway::new());
    let m = SbdModem::start(
        gw.clone(),
        SbdModemConfig {
            write_timeout: Duration::from_millis(200),
            ..SbdModemConfig::default()
        },
    )
    .unwrap();
    let mut p = SerialPort::open(m.path(), 19_200).unwrap();
    let say = |p: &mut SerialPort, bytes: &[u8], want: &[u8]| {
        p.write_all(bytes).unwrap();
        read_until_contains(p, want)
    };
    // Echo until ATE0; a bare \n does not end a command.
    assert_eq!(say(&mut p, b"AT\n", b"\n"), b"AT\n");
    assert_eq!(say(&mut p, b"\r", b"OK\r\n"), b"\r\r\nOK\r\n");
    assert_eq!(say(&mut p, b"ATE0\r", b"OK\r\n"), b"ATE0\r\r\nOK\r\n");
    assert_eq!(say(&mut p, b"AT+SBDWB=5\r", b"READY\r\n"), b"\r\nREADY\r\n");
    assert_eq!(
        say(&mut p, b"hello\x02\x14", b"OK\r\n"),
        b"\r\n0\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut p, b"AT+SBDWB=5\r", b"READY\r\n"), b"\r\nREADY\r\n");
    assert_eq!(
        say(&mut p, b"hello\x02\x15", b"OK\r\n"),
        b"\r\n2\r\n\r\nOK\r\n"
    );
    // The bytes never all arrive: 1, and no OK.
    assert_eq!(say(&mut p, b"AT+SBDWB=5\r", b"READY\r\n"), b"\r\nREADY\r\n");
    assert_eq!(say(&mut p, b"hel", b"1\r\n"), b"\r\n1\r\n");
    assert_eq!(
        say(&mut p, b"AT+SBDWB=341\r", b"OK\r\n"),
        b"\r\n3\r\n\r\nOK\r\n"
    );
    gw.queue_mt(b"hi", true).unwrap();
    assert_eq!(
        say(&mut p, b"AT+SBDIX\r", b"OK\r\n"),
        b"\r\n+SBDIX: 0, 0, 1, 1, 2, 0\r\n\r\nOK\r\n"
    );
    assert_eq!(gw.delivered()[0].data, b"hello");
    assert_eq!(
        say(&mut p, b"AT+SBDRB\r", b"OK\r\n"),
        b"\x00\x02hi\x00\xd1\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut p, b"AT+SBDSX\r", b"OK\r\n"),
        b"\r\n+SBDSX: 1, 1, 1, 1, 0, 0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut p, b"AT+SBDD2\r", b"OK\r\n"),
        b"\r\n0\r\n\r\nOK\r\n"
    );
    // Ring alerts once enabled and an MT waits.
    assert_eq!(say(&mut p, b"AT+SBDMTA=1\r", b"OK\r\n"), b"\r\nOK\r\n");
    gw.queue_mt(b"ring", false).unwrap();
    assert_eq!(read_until_contains(&mut p, b"SBDRING\r\n"), b"SBDRING\r\n");
    assert_eq!(say(&mut p, b"AT+BOGUS\r", b"ERROR\r\n"), b"\r\nERROR\r\n");
    assert_eq!(m.stats().credits, 2, "one session: 5 bytes up, 2 down");
    assert!(MemoryGateway::new().queue_mt(&[0; 271], false).is_err());
}
