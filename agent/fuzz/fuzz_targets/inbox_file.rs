//! Fuzz the decoder of inbox files (what `flotta-agent emit` and other
//! programs drop into `<data_dir>/inbox/`): it must never panic, and a record
//! it accepts re-encodes to bytes that decode to the same record.
#![no_main]

use flotta_agent::inbox::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = decode(data) {
        assert_eq!(decode(&payload.encode()).ok(), Some(payload));
    }
});
