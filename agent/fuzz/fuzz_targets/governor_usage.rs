//! Fuzz the decoder of the governor's usage file (`<data_dir>/governor/usage`):
//! arbitrary bytes must never panic, loop or allocate without bound; what
//! decodes must re-encode to the same bytes and take a new record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flotta_agent::governor::fuzz_usage_file(data);
});
