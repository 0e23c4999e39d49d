//! Fuzz the decoder of the in-flight ledger (`<data_dir>/frame/ledger.bin`,
//! persisted bytes a power cut or a bad SD card may damage): it must never
//! panic; damage decodes to "no ledger" (records are sent again).
#![no_main]

use flotta_agent::frames::decode_ledger_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_ledger_file(data);
});
