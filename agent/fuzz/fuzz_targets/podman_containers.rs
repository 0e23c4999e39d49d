//! Fuzz the decoder of `podman ps --all --pod --format json` output
//! (another program's bytes, any podman version): never panic, never a
//! container without its pod or name, never one both running and crashed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flotta_agent::workloads::containers::fuzz_ps(data);
});
