//! [`LoraCarrier`] over a scripted [`LoraModem`] (no serial port): the
//! join policy, the budget, port filtering and counting, and how modem
//! errors become carrier errors. The drivers against simulated modems on
//! ptys are tested in `tests/tests/lora_modem.rs`.

use std::collections::VecDeque;

use super::*;

/// A modem whose sends answer from a script (then a plain `TX_DONE`).
#[derive(Default)]
struct Fake {
    joined: bool,
    join_results: VecDeque<Result<(), LoraError>>,
    joins: u32,
    dr: u8,
    sends: VecDeque<Result<TxReport, LoraError>>,
    sent: Vec<Vec<u8>>,
    /// The data rate a send leaves (ADR moved it meanwhile).
    dr_after: Option<u8>,
}

impl LoraModem for Fake {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn init(&mut self, _adr: bool) -> Result<(), LoraError> {
        Ok(())
    }
    fn is_joined(&mut self) -> Result<bool, LoraError> {
        Ok(self.joined)
    }
    fn join(&mut self) -> Result<(), LoraError> {
        self.joins += 1;
        let r = self.join_results.pop_front().unwrap_or(Ok(()));
        self.joined = r.is_ok();
        r
    }
    fn data_rate(&mut self) -> Result<u8, LoraError> {
        Ok(self.dr)
    }
    fn set_data_rate(&mut self, dr: u8) -> Result<(), LoraError> {
        self.dr = dr;
        Ok(())
    }
    fn dev_eui(&mut self) -> Result<[u8; 8], LoraError> {
        Ok([1; 8])
    }
    fn send(&mut self, _port: u8, payload: &[u8], _c: bool) -> Result<TxReport, LoraError> {
        self.sent.push(payload.to_vec());
        if let Some(dr) = self.dr_after.take() {
            self.dr = dr;
        }
        self.sends.pop_front().unwrap_or_else(|| {
            Ok(TxReport {
                data_rate: self.dr,
                next_data_rate: self.dr,
                ..TxReport::default()
            })
        })
    }
    fn reset(&mut self, _adr: bool) -> Result<(), LoraError> {
        self.joined = false;
        Ok(())
    }
}

fn dl(port: u8, data: &[u8]) -> Downlink {
    Downlink {
        port,
        data: wire::Payload::from_slice(data).unwrap(),
        rssi: None,
        snr: None,
    }
}

fn cfg() -> LorawanConfig {
    LorawanConfig {
        device: "/dev/null".into(),
        data_rate: 5,
        join_backoff_ms: 1,
        ..LorawanConfig::default()
    }
}

#[test]
fn downlinks_on_the_port_are_returned_the_rest_counted_as_ignored() {
    let mut earlier = heapless::Vec::new();
    earlier.push(dl(10, b"early")).unwrap();
    let fake = Fake {
        dr: 5,
        sends: [Ok(TxReport {
            downlink: Some(dl(11, b"other")),
            earlier,
            data_rate: 5,
            next_data_rate: 2,
            acked: None,
        })]
        .into(),
        ..Fake::default()
    };
    let mut c = LoraCarrier::with_modem(fake, &cfg());
    assert_eq!(c.budget(), 237);
    assert_eq!(c.send(b"frame").unwrap(), [b"early".to_vec()]);
    let t = c.traffic();
    assert_eq!(
        (t.sent, t.bytes_up, t.received, t.bytes_down, t.ignored),
        (1, 5, 2, 10, 1)
    );
    assert!(t.airtime_ms > 0);
    // ADR moved the modem to DR2 in the receive windows.
    assert_eq!((c.data_rate(), c.budget()), (2, 46));
    assert_eq!(c.modem().joins, 1);
}

#[test]
fn modem_errors_become_carrier_errors() {
    let fake = Fake {
        dr: 5,
        sends: [
            Err(LoraError::NoFreeChannel),
            Err(LoraError::InvalidLength { len: 60 }),
            Err(LoraError::Busy),
            Err(LoraError::Busy),
            Err(LoraError::Busy),
        ]
        .into(),
        ..Fake::default()
    };
    let mut c = LoraCarrier::with_modem(fake, &cfg());
    assert!(matches!(
        c.send(b"a"),
        Err(CarrierError::HeldBack("duty_cycle"))
    ));
    // The modem's rate fell to DR0 as the frame went: it refuses it, and
    // the carrier reports the budget now.
    c.modem().dr_after = Some(0);
    let err = c.send(&[0; 60]).unwrap_err();
    assert!(
        matches!(
            err,
            CarrierError::TooLarge {
                len: 60,
                budget: 46
            }
        ),
        "{err}"
    );
    let err = c.send(b"b").unwrap_err();
    assert!(
        matches!(&err, CarrierError::Modem(e) if e == "fake send: modem busy"),
        "{err}"
    );
    assert_eq!(c.modem().sent.len(), 2 + 3, "busy is tried three times");
}

#[test]
fn joins_are_tried_with_back_off_and_their_failure_named() {
    let fake = Fake {
        join_results: [
            Err(LoraError::JoinDenied("RX_TIMEOUT".into())),
            Err(LoraError::Busy),
            Err(LoraError::JoinDenied("denied".into())),
        ]
        .into(),
        ..Fake::default()
    };
    let mut c = LoraCarrier::with_modem(fake, &cfg());
    let err = c.send(b"x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "modem: fake join: OTAA join failed after 3 attempts, the last: join attempt failed: denied"
    );
    assert!(c.modem().sent.is_empty());
    // A refused command ends the joins at once.
    c.modem().join_results.push_back(Err(LoraError::Rejected {
        command: "j".into(),
        reply: "keys_not_init".into(),
    }));
    let err = c.send(b"x").unwrap_err();
    assert!(err.to_string().contains("keys_not_init"), "{err}");
    assert_eq!(c.modem().joins, 4);
    c.send(b"x").unwrap();
    assert_eq!((c.modem().joins, c.modem().sent.len()), (5, 1));
}
