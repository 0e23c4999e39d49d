//! Fuzz the cumulative-ack decoder: never panics, and an ack it accepts
//! re-encodes to exactly the bytes it consumed (canonical encoding).
#![no_main]

use flotta_proto::frame::Ack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((ack, n)) = Ack::decode(data) {
        let mut buf = [0u8; 16];
        let m = ack.encode(&mut buf).expect("a decoded ack encodes");
        assert_eq!(&buf[..m], &data[..n]);
    }
});
