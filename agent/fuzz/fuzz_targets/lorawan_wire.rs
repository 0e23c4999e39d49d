//! Fuzz the decoders of text a LoRaWAN modem (or whatever sits on the
//! serial port) sends: the RUI3 event and query parsers, the RN2483
//! `mac_rx`/status parsers, hex payloads and DevEUIs, and both dialect
//! drivers reading arbitrary modem output through the AT engine. None may
//! panic, loop or allocate without bound; an accepted payload is at most
//! 242 bytes and re-encodes to what was read.
#![no_main]

use std::io;
use std::time::{Duration, Instant};

use flotta_agent::carrier::lorawan::wire::{self, RakEvent};
use flotta_agent::carrier::lorawan::{LoraModem, Rak3172, Rn2483, Timeouts};
use flotta_agent::carrier::serial::Port;
use libfuzzer_sys::fuzz_target;

/// A port whose modem says `data`, then nothing.
struct Bytes<'a>(&'a [u8]);

impl Port for Bytes<'_> {
    fn read_until(&mut self, buf: &mut [u8], _deadline: Instant) -> io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
    fn write_all(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

fn drive(modem: &mut dyn LoraModem) {
    let _ = modem.is_joined();
    let _ = modem.data_rate();
    let _ = modem.dev_eui();
    let _ = modem.join();
    if let Ok(r) = modem.send(10, b"fuzz", false) {
        if let Some(d) = r.downlink {
            assert!(d.data.len() <= wire::MAX_PAYLOAD);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        if let Ok(RakEvent::Rx(d)) = wire::parse_rak_event(line) {
            assert!(d.data.len() <= wire::MAX_PAYLOAD);
        }
        if let Ok(d) = wire::parse_rn_rx(line) {
            assert!(d.data.len() <= wire::MAX_PAYLOAD);
        }
        if let Ok(bytes) = wire::decode_hex(line) {
            assert!(bytes.len() <= wire::MAX_PAYLOAD);
            let hex = wire::encode_hex(&bytes).unwrap();
            assert!(hex.eq_ignore_ascii_case(line));
        }
        let _ = wire::parse_dev_eui(line);
        let _ = wire::rn_status_joined(line);
        let _ = wire::rak_value(line, "AT+NJS");
        let _ = wire::parse_data_rate(line);
    }
    let t = Duration::from_millis(1);
    let t = Timeouts { command: t, tx: t, join: t };
    drive(&mut Rak3172::new(Bytes(data), t));
    drive(&mut Rn2483::new(Bytes(data), t));
});
