//! The agent's LoRaWAN drivers and carrier (library API) against the
//! simulated RAK3172 and RN2483 (`flotta_e2e::modem::lora`) on
//! pseudo-terminals, at byte level: the real serial port code, AT engine
//! and dialect drivers, an in-memory network whose downlinks are queued by
//! the test (or by a responder that answers each uplink on the next one,
//! as a network server's application integration does). Every test runs
//! against both dialects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotta_agent::carrier::lorawan::airtime::uplink_airtime;
use flotta_agent::carrier::lorawan::{
    LoraError, LoraModem, ModemKind, Rak3172, Region, Rn2483, Timeouts,
};
use flotta_agent::carrier::serial::{Port, SerialPort};
use flotta_agent::carrier::{CarrierError, FrameCarrier, LoraCarrier, LorawanConfig};
use flotta_e2e::modem::lora::{
    Dialect, LoraDownlink, LoraModemConfig, LoraNetwork, LoraUplink, MemoryNetwork, SimModem,
};

const DIALECTS: [Dialect; 2] = [Dialect::Rak3172, Dialect::Rn2483];
const EUI: [u8; 8] = [0xac, 0x1f, 0x09, 0xff, 0xfe, 0x00, 0x00, 0x01];
const PORT: u8 = 10;

fn start(d: Dialect, cfg: LoraModemConfig) -> (SimModem, Arc<MemoryNetwork>) {
    let net = Arc::new(MemoryNetwork::new());
    let m = SimModem::start(d, net.clone(), cfg).expect("start the simulated modem");
    (m, net)
}

fn config(m: &SimModem, d: Dialect) -> LorawanConfig {
    LorawanConfig {
        device: m.path().to_string_lossy().into_owned(),
        modem: match d {
            Dialect::Rak3172 => ModemKind::Rak3172,
            Dialect::Rn2483 => ModemKind::Rn2483,
        },
        data_rate: 5,
        command_timeout_ms: 300,
        tx_timeout_ms: 1_000,
        join_timeout_ms: 1_000,
        join_backoff_ms: 20,
        ..LorawanConfig::default()
    }
}

fn carrier(m: &SimModem, d: Dialect) -> LoraCarrier<Box<dyn LoraModem>> {
    LoraCarrier::open(&config(m, d)).expect("open the simulated modem's tty")
}

fn down(port: u8, data: &[u8]) -> LoraDownlink {
    LoraDownlink {
        f_port: port,
        data: data.to_vec(),
        confirmed: false,
    }
}

/// A network server whose application answers each uplink with
/// `ok:<uplink>`, queued *after* the uplink (so it rides on the next).
struct Responder(MemoryNetwork);

impl LoraNetwork for Responder {
    fn joined(&self, dev_eui: [u8; 8]) {
        self.0.joined(dev_eui);
    }
    fn uplink(&self, up: &LoraUplink) -> Option<LoraDownlink> {
        let d = self.0.uplink(up);
        self.0
            .enqueue(up.dev_eui, down(PORT, &[b"ok:", &up.data[..]].concat()));
        d
    }
}

fn answer_to(frame: &[u8]) -> impl FnMut(&[u8]) -> bool + '_ {
    move |d: &[u8]| d.strip_prefix(b"ok:") == Some(frame)
}

#[test]
fn the_carrier_is_lorawan_sized_by_the_data_rate_and_names_the_device() {
    for d in DIALECTS {
        let (m, _) = start(d, LoraModemConfig::default());
        let mut c = carrier(&m, d);
        assert_eq!(
            (c.name(), c.identifies_device(), c.answers_later()),
            ("lorawan", true, true)
        );
        // EU868 DR5: 242 bytes less the 5 reserved for FOpts.
        assert_eq!(c.budget(), 237, "{d:?}");
        assert_eq!(c.dev_eui().unwrap(), EUI, "{d:?}");
    }
}

#[test]
fn a_frame_goes_up_once_and_brings_the_downlinks_on_its_port() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        let mut c = carrier(&m, d);
        net.enqueue(EUI, down(PORT, b"answer"));
        assert_eq!(c.send(b"frame-1").unwrap(), [b"answer".to_vec()], "{d:?}");
        // Another application's downlink is ignored and counted.
        net.enqueue(EUI, down(7, b"other"));
        assert!(c.send(b"frame-2").unwrap().is_empty(), "{d:?}");
        // Nothing queued: nothing comes.
        assert!(c.send(b"frame-3").unwrap().is_empty(), "{d:?}");
        let ups = net.uplinks();
        let seen: Vec<_> = ups
            .iter()
            .map(|u| (u.f_cnt, u.f_port, u.data.clone(), u.confirmed))
            .collect();
        assert_eq!(
            seen,
            [
                (0, Some(PORT), b"frame-1".to_vec(), false),
                (1, Some(PORT), b"frame-2".to_vec(), false),
                (2, Some(PORT), b"frame-3".to_vec(), false),
            ],
            "{d:?}"
        );
        let t = c.traffic();
        assert_eq!(
            (t.sent, t.bytes_up, t.received, t.bytes_down, t.ignored),
            (3, 21, 2, 11, 1),
            "{d:?}"
        );
        let one = uplink_airtime(Region::Eu868, 5, 0, 7).unwrap();
        assert_eq!(t.airtime_ms, (one * 3).as_millis() as u64, "{d:?}");
        assert_eq!((net.joins(), m.stats().uplinks), (1, 3), "{d:?}");
        if d == Dialect::Rak3172 {
            // RUI3 settings live in flash: read, and already right, never written.
            let commands = m.stats().commands;
            assert!(
                commands.iter().all(|c| c != "AT+CFM=0" && c != "AT+ADR=1"),
                "{commands:?}"
            );
            assert!(commands.iter().any(|c| c == "AT+CFM=?"), "{commands:?}");
        }
    }
}

#[test]
fn the_session_is_kept_across_reopening_the_port() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        carrier(&m, d).send(b"first").unwrap();
        // A later window opens the port again: no new join.
        let mut c = carrier(&m, d);
        assert!(!c.ensure_joined().unwrap(), "{d:?}");
        c.send(b"second").unwrap();
        assert_eq!((net.joins(), m.stats().join_attempts), (1, 1), "{d:?}");
        let f_cnts: Vec<_> = net.uplinks().iter().map(|u| u.f_cnt).collect();
        assert_eq!(f_cnts, [0, 1], "{d:?}");
        // A modem joined before the agent started is not joined again.
        let (m, net) = start(
            d,
            LoraModemConfig {
                joined: true,
                ..LoraModemConfig::default()
            },
        );
        carrier(&m, d).send(b"x").unwrap();
        assert_eq!((net.joins(), net.uplinks().len()), (0, 1), "{d:?}");
    }
}

#[test]
fn failed_joins_are_retried_after_a_back_off_then_reported() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        m.fail_joins(2);
        let t0 = Instant::now();
        carrier(&m, d).send(b"after two failures").unwrap();
        // Back-offs of 20 and 40 ms.
        assert!(t0.elapsed() >= Duration::from_millis(60), "{d:?}");
        assert_eq!((m.stats().join_attempts, net.joins()), (3, 1), "{d:?}");

        let (m, net) = start(d, LoraModemConfig::default());
        m.fail_joins(4);
        let mut c = carrier(&m, d);
        let err = c.send(b"never sent").unwrap_err();
        assert!(
            matches!(&err, CarrierError::Modem(e) if e.contains("OTAA join failed after 3 attempts")),
            "{d:?}: {err}"
        );
        assert!(err.is_retriable());
        assert!(net.uplinks().is_empty() && !m.joined(), "{d:?}");
        // The next window joins (one failure left) and sends.
        c.send(b"sent").unwrap();
        assert_eq!((m.stats().join_attempts, net.joins()), (5, 1), "{d:?}");
        assert_eq!(net.uplinks()[0].data, b"sent");
    }
}

#[test]
fn the_budget_follows_the_data_rate_and_over_budget_frames_are_refused() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        let mut c = carrier(&m, d);
        c.send(b"at dr5").unwrap();
        assert_eq!(c.budget(), 237);
        // ADR moves the modem to DR0 (51 bytes): the next uplink learns it.
        m.set_data_rate(0);
        c.send(b"still fits").unwrap();
        assert_eq!((c.data_rate(), c.budget()), (0, 46), "{d:?}");
        let err = c.send(&[0u8; 47]).unwrap_err();
        assert!(
            matches!(
                err,
                CarrierError::TooLarge {
                    len: 47,
                    budget: 46
                }
            ) && !err.is_retriable(),
            "{d:?}: {err}"
        );
        // A budget learnt before the data rate fell: the frame is checked
        // against the modem's rate before it goes.
        m.set_data_rate(5);
        c.send(b"dr5 again").unwrap();
        m.set_data_rate(3);
        let err = c.send(&[0u8; 200]).unwrap_err();
        assert!(
            matches!(
                err,
                CarrierError::TooLarge {
                    len: 200,
                    budget: 110
                }
            ),
            "{d:?}: {err}"
        );
        assert_eq!(net.uplinks().len(), 3, "{d:?}");
        assert!(matches!(
            c.send(&[0u8; 243]),
            Err(CarrierError::TooLarge { len: 243, .. })
        ));
        // The next window's carrier starts from the modem's rate, not the
        // configured one.
        drop(c);
        assert_eq!(carrier(&m, d).budget(), 110, "{d:?}");
    }
    // US915: DR1 carries 53 bytes.
    let (m, _) = start(
        Dialect::Rn2483,
        LoraModemConfig {
            max_payload: vec![11, 53, 125, 242, 242],
            data_rate: 1,
            ..LoraModemConfig::default()
        },
    );
    let mut cfg = config(&m, Dialect::Rn2483);
    cfg.region = Region::Us915;
    cfg.data_rate = 1;
    let mut c = LoraCarrier::open(&cfg).unwrap();
    c.send(b"us").unwrap();
    assert_eq!(c.budget(), 48);
}

#[test]
fn the_modem_refuses_a_payload_over_its_data_rate() {
    let t = Timeouts {
        command: Duration::from_millis(300),
        tx: Duration::from_secs(1),
        join: Duration::from_secs(1),
    };
    let (m, _) = start(
        Dialect::Rak3172,
        LoraModemConfig {
            data_rate: 0,
            joined: true,
            ..LoraModemConfig::default()
        },
    );
    let mut rak = Rak3172::new(SerialPort::open(m.path(), 115_200).unwrap(), t);
    rak.init(true).unwrap();
    let err = rak.send(PORT, &[1u8; 52], false).unwrap_err();
    assert!(
        matches!(err, LoraError::InvalidLength { len: 52 }) && !err.is_retriable(),
        "{err}"
    );
    let (m, _) = start(
        Dialect::Rn2483,
        LoraModemConfig {
            data_rate: 0,
            joined: true,
            ..LoraModemConfig::default()
        },
    );
    let mut rn = Rn2483::new(SerialPort::open(m.path(), 57_600).unwrap(), t);
    rn.init(true).unwrap();
    let err = rn.send(PORT, &[1u8; 52], false).unwrap_err();
    assert!(matches!(err, LoraError::InvalidLength { len: 52 }), "{err}");
    assert!(rn.send(PORT, &[1u8; 51], false).is_ok());
}

#[test]
fn confirmed_uplinks_report_the_ack_and_downlinks_carry_rssi_and_snr() {
    let t = Timeouts {
        command: Duration::from_millis(300),
        tx: Duration::from_secs(1),
        join: Duration::from_secs(1),
    };
    for d in DIALECTS {
        let (m, net) = start(
            d,
            LoraModemConfig {
                rx_after_tx_done: true,
                ..LoraModemConfig::default()
            },
        );
        let mut modem: Box<dyn LoraModem> = match d {
            Dialect::Rak3172 => Box::new(Rak3172::new(
                SerialPort::open(m.path(), 115_200).unwrap(),
                t,
            )),
            Dialect::Rn2483 => {
                Box::new(Rn2483::new(SerialPort::open(m.path(), 57_600).unwrap(), t))
            }
        };
        modem.init(false).unwrap();
        assert!(!modem.is_joined().unwrap());
        modem.join().unwrap();
        assert!(modem.is_joined().unwrap());
        assert_eq!(modem.dev_eui().unwrap(), EUI);
        let r = modem.send(PORT, b"cnf", true).unwrap();
        assert_eq!(
            (r.acked, r.downlink.is_none(), r.data_rate),
            (Some(true), true, 5),
            "{d:?}"
        );
        m.lose_uplinks(1);
        let r = modem.send(PORT, b"cnf lost", true).unwrap();
        assert_eq!(r.acked, Some(false), "{d:?}");
        // An unconfirmed uplink lost on air still reports done.
        m.lose_uplinks(1);
        let r = modem.send(PORT, b"uncnf lost", false).unwrap();
        assert_eq!((r.acked, r.downlink), (None, None), "{d:?}");
        net.enqueue(EUI, down(3, &[0xca, 0xfe]));
        let r = modem.send(PORT, b"uncnf", false).unwrap();
        let dl = r.downlink.expect("the queued downlink");
        assert_eq!(
            (dl.port, dl.data.as_slice()),
            (3, &[0xca, 0xfe][..]),
            "{d:?}"
        );
        match d {
            Dialect::Rak3172 => assert_eq!((dl.rssi, dl.snr), (Some(-70), Some(8))),
            Dialect::Rn2483 => assert_eq!((dl.rssi, dl.snr), (None, None)),
        }
        let heard: Vec<_> = net
            .uplinks()
            .into_iter()
            .map(|u| (u.data, u.confirmed))
            .collect();
        assert_eq!(
            heard,
            [(b"cnf".to_vec(), true), (b"uncnf".to_vec(), false)],
            "{d:?}"
        );
    }
}

#[test]
fn a_busy_mac_is_retried_and_a_duty_cycle_refusal_holds_the_window_back() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        let mut c = carrier(&m, d);
        c.send(b"joined").unwrap();
        m.busy(1);
        c.send(b"after busy").unwrap();
        assert_eq!(m.stats().refused, 1, "{d:?}");
        m.busy(5);
        let err = c.send(b"busy for good").unwrap_err();
        assert!(
            matches!(&err, CarrierError::Modem(e) if e.contains("busy")),
            "{d:?}: {err}"
        );
        m.busy(0);
        m.no_free_channel(1);
        let r = c.send(b"duty cycle");
        match d {
            // RUI3 says busy: retried, and one refusal later the channel is free.
            Dialect::Rak3172 => assert!(r.is_ok(), "{r:?}"),
            Dialect::Rn2483 => assert!(
                matches!(&r, Err(e @ CarrierError::HeldBack("duty_cycle")) if e.is_retriable()),
                "{r:?}"
            ),
        }
        c.send(b"free again").unwrap();
        let sent: Vec<_> = net.uplinks().into_iter().map(|u| u.data).collect();
        let want: &[&[u8]] = match d {
            Dialect::Rak3172 => &[b"joined", b"after busy", b"duty cycle", b"free again"],
            Dialect::Rn2483 => &[b"joined", b"after busy", b"free again"],
        };
        assert_eq!(sent, want, "{d:?}");
    }
}

#[test]
fn a_lost_session_is_joined_again_before_the_frame() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        let mut c = carrier(&m, d);
        c.send(b"one").unwrap();
        // The carrier believes it is joined; the modem says not_joined.
        m.drop_session();
        c.send(b"two").unwrap();
        assert_eq!(net.joins(), 2, "{d:?}");
        let f_cnts: Vec<_> = net.uplinks().iter().map(|u| u.f_cnt).collect();
        assert_eq!(f_cnts, [0, 0], "{d:?}: FCnt restarts with the session");
    }
}

#[test]
fn a_hung_modem_is_reset_joins_again_and_is_reported_within_its_deadline() {
    for d in DIALECTS {
        let (m, net) = start(d, LoraModemConfig::default());
        let mut c = carrier(&m, d);
        c.send(b"before").unwrap();

        // Silent to everything but the reset command.
        m.hang_until_reset();
        let err = c.send(b"lost").unwrap_err();
        assert!(
            matches!(&err, CarrierError::Modem(e) if e.ends_with("modem reset")),
            "{d:?}: {err}"
        );
        assert_eq!(m.stats().resets, 1, "{d:?}");
        assert!(!m.joined(), "{d:?}: a reset loses the session");
        c.send(b"after").unwrap();
        assert_eq!(net.joins(), 2, "{d:?}");

        // Silent for good: reported, not hung.
        m.set_hung(true);
        let t0 = Instant::now();
        let err = c.send(b"hung").unwrap_err();
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{d:?}: {:?}",
            t0.elapsed()
        );
        assert!(
            matches!(&err, CarrierError::Modem(e) if e.contains("reset failed")),
            "{d:?}: {err}"
        );
        assert!(err.is_retriable());
        m.set_hung(false);
        c.send(b"recovered").unwrap();
        let data: Vec<_> = net.uplinks().into_iter().map(|u| u.data).collect();
        assert_eq!(
            data,
            [b"before".to_vec(), b"after".to_vec(), b"recovered".to_vec()],
            "{d:?}"
        );
    }
}

#[test]
fn exchange_resends_identical_bytes_until_the_answer_queued_meanwhile_arrives() {
    for d in DIALECTS {
        let net = Arc::new(Responder(MemoryNetwork::new()));
        let m = SimModem::start(d, net.clone(), LoraModemConfig::default()).unwrap();
        let mut c = carrier(&m, d);
        // The answer to the first uplink rides on the second.
        let answer = c.exchange(b"frame-1", &mut answer_to(b"frame-1")).unwrap();
        assert_eq!(answer, b"ok:frame-1", "{d:?}");
        let data: Vec<_> = net.0.uplinks().into_iter().map(|u| u.data).collect();
        assert_eq!(data, vec![b"frame-1".to_vec(); 2], "{d:?}");

        // The next frame first meets the answer to an older one (skipped),
        // then its own; a lost uplink costs one more transmission.
        m.lose_uplinks(1);
        let answer = c.exchange(b"frame-2", &mut answer_to(b"frame-2")).unwrap();
        assert_eq!(answer, b"ok:frame-2", "{d:?}");
        let t = c.traffic();
        assert_eq!((t.sent, t.received, t.ignored), (5, 3, 1), "{d:?}: {t:?}");

        // Never answered: NoAnswer after `attempts` identical uplinks.
        let err = c.exchange(b"frame-3", &mut |_: &[u8]| false).unwrap_err();
        assert!(
            matches!(err, CarrierError::NoAnswer { attempts: 3 }),
            "{d:?}: {err}"
        );
        let last: Vec<_> = net
            .0
            .uplinks()
            .into_iter()
            .rev()
            .take(3)
            .map(|u| u.data)
            .collect();
        assert_eq!(last, vec![b"frame-3".to_vec(); 3], "{d:?}");
    }
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
fn the_simulators_speak_their_dialects_byte_for_byte() {
    let net = Arc::new(MemoryNetwork::new());
    let m = SimModem::start(Dialect::Rak3172, net.clone(), LoraModemConfig::default()).unwrap();
    let mut p = SerialPort::open(m.path(), 115_200).unwrap();
    let mut say = |bytes: &[u8], want: &[u8]| {
        p.write_all(bytes).unwrap();
        String::from_utf8(read_until_contains(&mut p, want)).unwrap()
    };
    assert_eq!(say(b"AT\r\n", b"OK\r\n"), "OK\r\n");
    assert_eq!(say(b"AT+NJS=?\r\n", b"OK\r\n"), "AT+NJS=0\r\nOK\r\n");
    assert_eq!(
        say(b"AT+SEND=10:00\r\n", b"\r\n"),
        "AT_NO_NETWORK_JOINED\r\n"
    );
    assert_eq!(
        say(b"AT+JOIN=1:0:8:1\r\n", b"JOINED\r\n"),
        "OK\r\n+EVT:JOINED\r\n"
    );
    net.enqueue(EUI, down(2, &[0xab, 0x01]));
    assert_eq!(
        say(b"AT+SEND=10:CAFE\r\n", b"TX_DONE\r\n"),
        "OK\r\n+EVT:RX_1:-70:8:UNICAST:2:ab01\r\n+EVT:TX_DONE\r\n"
    );
    assert_eq!(say(b"AT+DR=7\r\n", b"\r\n"), "AT_PARAM_ERROR\r\n");
    assert_eq!(say(b"AT+DR=0\r\n", b"OK\r\n"), "OK\r\n");
    let long = format!("AT+SEND=10:{}\r\n", "00".repeat(52));
    assert_eq!(say(long.as_bytes(), b"\r\n"), "AT_PARAM_ERROR\r\n");
    assert_eq!(say(b"AT+BOGUS\r\n", b"\r\n"), "AT_COMMAND_NOT_FOUND\r\n");
    assert_eq!(
        say(b"AT+DEVEUI=?\r\n", b"OK\r\n"),
        "AT+DEVEUI=ac1f09fffe000001\r\nOK\r\n"
    );
    assert_eq!(net.uplinks()[0].data, [0xca, 0xfe]);

    let net = Arc::new(MemoryNetwork::new());
    let m = SimModem::start(Dialect::Rn2483, net.clone(), LoraModemConfig::default()).unwrap();
    let mut p = SerialPort::open(m.path(), 57_600).unwrap();
    let mut say = |bytes: &[u8], want: &[u8]| {
        p.write_all(bytes).unwrap();
        String::from_utf8(read_until_contains(&mut p, want)).unwrap()
    };
    assert_eq!(say(b"mac get status\r\n", b"\r\n"), "00000000\r\n");
    assert_eq!(say(b"mac tx uncnf 10 00\r\n", b"\r\n"), "not_joined\r\n");
    assert_eq!(
        say(b"mac join otaa\r\n", b"accepted\r\n"),
        "ok\r\naccepted\r\n"
    );
    m.no_free_channel(1);
    assert_eq!(say(b"mac tx uncnf 10 00\r\n", b"\r\n"), "no_free_ch\r\n");
    net.enqueue(EUI, down(10, &[0xab]));
    assert_eq!(
        say(b"mac tx uncnf 10 cafe\r\n", b"AB\r\n"),
        "ok\r\nmac_rx 10 AB\r\n"
    );
    assert_eq!(
        say(b"mac tx uncnf 10 beef\r\n", b"mac_tx_ok\r\n"),
        "ok\r\nmac_tx_ok\r\n"
    );
    assert_eq!(say(b"mac tx uncnf 0 00\r\n", b"\r\n"), "invalid_param\r\n");
    assert_eq!(say(b"mac set dr 2\r\n", b"\r\n"), "ok\r\n");
    let long = format!("mac tx uncnf 10 {}\r\n", "00".repeat(52));
    assert_eq!(say(long.as_bytes(), b"\r\n"), "invalid_data_len\r\n");
    assert!(say(b"sys reset\r\n", b"\r\n").starts_with("RN2483 "));
    assert_eq!(say(b"mac get status\r\n", b"\r\n"), "00000000\r\n");
    assert_eq!((net.uplinks().len(), m.stats().resets), (2, 1));
}
