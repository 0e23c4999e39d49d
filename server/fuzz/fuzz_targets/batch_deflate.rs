//! Fuzz the compressed batch path (`Content-Encoding: deflate`): inflating
//! untrusted bytes must never panic nor produce more than the limit, and a
//! batch it accepts is as valid as an uncompressed one.
#![no_main]

use flotta_server::decode::decode_encoded_batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limit = 64 * 1024;
    if let Ok(out) = flotta_proto::compress::inflate(data, limit) {
        assert!(out.len() <= limit);
    }
    if let Ok(batch) = decode_encoded_batch(data, Some("deflate"), limit) {
        assert!(batch.records.windows(2).all(|w| w[0].seq < w[1].seq));
    }
});
