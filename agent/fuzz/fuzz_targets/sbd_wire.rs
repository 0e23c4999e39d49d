//! Fuzz the decoders of bytes a RockBLOCK 9603 (or whatever sits on the
//! serial port) sends: the `+SBDIX:`/`+SBDSX:` parsers, the `AT+SBDRB`
//! framing, and the 9603 driver reading arbitrary modem output (lines,
//! echo, rings, binary MT) through the AT engine. None may panic, loop or
//! allocate without bound; an accepted MT must carry a valid checksum.
#![no_main]

use std::io;
use std::time::{Duration, Instant};

use flotta_agent::carrier::sbd::wire::{self, BufferStatus, SessionStatus};
use flotta_agent::carrier::sbd::Modem9603;
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

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = SessionStatus::parse(line);
        let _ = BufferStatus::parse(line);
    }
    if let Ok(msg) = wire::decode_sbdrb(data) {
        assert!(msg.len() <= wire::MAX_MT);
        assert_eq!(wire::encode_sbdrb(msg), data);
    }
    let t = Duration::from_millis(1);
    let mut modem = Modem9603::new(Bytes(data), t, t);
    let _ = modem.write_mo(b"fuzz");
    let _ = modem.session(false);
    if let Ok(mt) = modem.read_mt() {
        assert!(mt.len() <= wire::MAX_MT);
    }
    let _ = modem.clear_mo();
    let _ = modem.status();
    let _ = modem.wait_ring(Instant::now());
});
