//! Fuzz the plaintext item decoders (uplink and downlink): never panic, at
//! most one error and only last, and every item decoded re-encodes to a
//! sequence that decodes to the same items (the encoder and decoder agree).
#![no_main]

use flotta_proto::frame::{ItemWriter, WireItem, down_items, up_items};
use libfuzzer_sys::fuzz_target;

fn check<I: WireItem + PartialEq + core::fmt::Debug>(
    items: &[Result<I, flotta_proto::frame::FrameError>],
    reparse: impl Fn(&[u8]) -> bool,
) {
    if let Some(pos) = items.iter().position(Result::is_err) {
        assert_eq!(pos, items.len() - 1, "an error ends the items");
    }
    let ok: Vec<&I> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut buf = vec![0u8; ok.iter().map(|i| i.encoded_len()).sum()];
    let mut w = ItemWriter::new(&mut buf);
    for i in &ok {
        w.push(*i).expect("a decoded item encodes");
    }
    assert!(reparse(w.written()));
}

fuzz_target!(|data: &[u8]| {
    let ups: Vec<_> = up_items(data).collect();
    check(&ups, |bytes| {
        let again: Vec<_> = up_items(bytes)
            .collect::<Result<_, _>>()
            .expect("re-encoded items decode");
        again
            == ups
                .iter()
                .filter_map(|r| r.as_ref().ok().copied())
                .collect::<Vec<_>>()
    });
    let downs: Vec<_> = down_items(data).collect();
    check(&downs, |bytes| {
        let again: Vec<_> = down_items(bytes)
            .collect::<Result<_, _>>()
            .expect("re-encoded items decode");
        again
            == downs
                .iter()
                .filter_map(|r| r.as_ref().ok().copied())
                .collect::<Vec<_>>()
    });
});
