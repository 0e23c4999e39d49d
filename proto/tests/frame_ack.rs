//! Cumulative acks: every valid ack round-trips, encodings are canonical
//! (decoding then re-encoding gives back the same bytes), and the decoder
//! never panics on arbitrary bytes. Also: an ack built from a set of stored
//! counters says exactly what the set holds in its range.

use std::collections::BTreeSet;

use flotta_proto::frame::{Ack, COUNTER_MAX};
use proptest::prelude::*;

fn valid_ack() -> impl Strategy<Value = Ack> {
    (0..=COUNTER_MAX + 1, any::<u32>()).prop_map(|(below, bitmap)| {
        // Drop bits naming counters past 24 bits.
        let room = COUNTER_MAX.saturating_sub(below);
        let bitmap = if room < 32 {
            bitmap & ((1u32 << room) - 1)
        } else {
            bitmap
        };
        Ack { below, bitmap }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn round_trips(ack in valid_ack(), trailing in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut buf = [0u8; 16];
        let n = ack.encode(&mut buf).unwrap();
        prop_assert!(n <= 9);
        let mut bytes = buf[..n].to_vec();
        bytes.extend_from_slice(&trailing);
        prop_assert_eq!(Ack::decode(&bytes).unwrap(), (ack, n));
        // Too small a buffer is an error, not a truncation.
        prop_assert!(ack.encode(&mut buf[..n - 1]).is_err());
    }

    #[test]
    fn decoder_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Ok((ack, n)) = Ack::decode(&bytes) {
            let mut buf = [0u8; 16];
            let m = ack.encode(&mut buf).unwrap();
            prop_assert_eq!(&buf[..m], &bytes[..n]);
        }
    }

    #[test]
    fn says_what_the_server_stored(stored in proptest::collection::btree_set(0u32..120, 0..100)) {
        let ack = ack_of(&stored);
        for c in ack.below..ack.below.saturating_add(33) {
            prop_assert_eq!(ack.acks(c), stored.contains(&c), "counter {}", c);
        }
        prop_assert!((0..ack.below).all(|c| stored.contains(&c)));
    }
}

/// How a server holding `stored` (no abandoned counters) builds its ack.
fn ack_of(stored: &BTreeSet<u32>) -> Ack {
    let below = (0..).find(|c| !stored.contains(c)).unwrap_or(0);
    let bitmap = (0..32)
        .filter(|i| stored.contains(&(below + 1 + i)))
        .fold(0u32, |m, i| m | (1 << i));
    Ack { below, bitmap }
}
