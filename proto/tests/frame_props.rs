//! Property tests of sealing and opening frames:
//! - seal → open round-trips every payload size up to the budget, with and
//!   without key id, and `TooLarge` starts exactly one byte past it;
//! - flipping any single bit anywhere in a sealed frame makes it fail to open;
//! - a frame does not open under another epoch, master secret, key id, device
//!   id, or with the sender's own context (wrong direction);
//! - header parsing and `open` never panic on arbitrary bytes.

mod common;

use common::{DEVICE_ID, KEY_ID, SALT, SECRET, pair};
use flotta_proto::frame::{
    COUNTER_MAX, FrameContext, FrameError, FrameType, Header, KeyId, OVERHEAD, Role, open,
    open_in_place, seal, sealed_len,
};
use proptest::prelude::*;

/// The UDP budget (the largest of the link budgets).
const BUDGET: usize = 1200;

fn seal_up(ctx: &FrameContext, counter: u32, with_key_id: bool, pt: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; BUDGET];
    let n = seal(
        ctx,
        FrameType::UplinkData,
        counter,
        with_key_id,
        pt,
        &mut out,
    )
    .expect("seal");
    out.truncate(n);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trips_up_to_the_budget(
        len in 0..=BUDGET - OVERHEAD,
        fill in any::<u8>(),
        counter in 0..=COUNTER_MAX,
        epoch in any::<u32>(),
        with_key_id in any::<bool>(),
    ) {
        let (device, server) = pair(epoch);
        let pt: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
        let mut out = vec![0u8; BUDGET];
        let sealed = seal(&device, FrameType::UplinkData, counter, with_key_id, &pt, &mut out);
        let needed = sealed_len(len, with_key_id);
        if needed > BUDGET {
            prop_assert_eq!(sealed, Err(FrameError::TooLarge { budget: BUDGET, needed }));
            return Ok(());
        }
        let n = sealed.unwrap();
        prop_assert_eq!(n, needed);
        let mut plain = vec![0u8; BUDGET];
        let opened = open(&server, &out[..n], &mut plain).unwrap();
        prop_assert_eq!(opened.plaintext, &pt[..]);
        prop_assert_eq!(opened.header.counter, counter);
        prop_assert_eq!(opened.header.key_id, with_key_id.then_some(KEY_ID));
        let mut frame = out[..n].to_vec();
        prop_assert_eq!(open_in_place(&server, &mut frame).unwrap().plaintext, &pt[..]);
        // One byte short of the need is refused, never truncated.
        let mut short = vec![0u8; needed - 1];
        prop_assert_eq!(
            seal(&device, FrameType::UplinkData, counter, with_key_id, &pt, &mut short),
            Err(FrameError::TooLarge { budget: needed - 1, needed })
        );
    }

    #[test]
    fn any_single_bit_flip_fails(
        pt in proptest::collection::vec(any::<u8>(), 0..64),
        counter in 0..=COUNTER_MAX,
        with_key_id in any::<bool>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let (device, server) = pair(3);
        let mut frame = seal_up(&device, counter, with_key_id, &pt);
        let bit = bit.index(frame.len() * 8);
        frame[bit / 8] ^= 1 << (bit % 8);
        let mut plain = vec![0u8; BUDGET];
        prop_assert!(open(&server, &frame, &mut plain).is_err());
    }

    #[test]
    fn other_contexts_cannot_open(
        pt in proptest::collection::vec(any::<u8>(), 0..64),
        counter in 0..=COUNTER_MAX,
        epoch in any::<u32>(),
        with_key_id in any::<bool>(),
        which in 0..6usize,
    ) {
        let (device, server) = pair(epoch);
        let frame = seal_up(&device, counter, with_key_id, &pt);
        let server_with = |kid: KeyId, epoch: u32, secret: &[u8; 32], device_id: &[u8]| {
            FrameContext::new(Role::Server, kid, epoch, secret, &SALT, device_id).unwrap()
        };
        let mut other_secret = SECRET;
        other_secret[31] ^= 1;
        let wrong = match which {
            0 => server_with(KEY_ID, epoch.wrapping_add(2), &SECRET, DEVICE_ID), // same parity
            1 => server_with(KEY_ID, epoch.wrapping_add(1), &SECRET, DEVICE_ID),
            2 => server_with(KEY_ID, epoch, &other_secret, DEVICE_ID),
            3 => server_with(KeyId([1, 2, 3, 4]), epoch, &SECRET, DEVICE_ID),
            4 => server_with(KEY_ID, epoch, &SECRET, b"another-device"),
            _ => pair(epoch).0, // the device itself: wrong direction
        };
        let mut plain = vec![0u8; BUDGET];
        prop_assert!(open(&wrong, &frame, &mut plain).is_err());
        // The right context still opens it.
        prop_assert!(open(&server, &frame, &mut plain).is_ok());
    }

    #[test]
    fn parse_and_open_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let (_, server) = pair(0);
        if let Ok((header, len)) = Header::parse(&bytes) {
            prop_assert!(len == header.len() && len + 8 <= bytes.len());
        }
        let mut plain = [0u8; 80];
        let _ = open(&server, &bytes, &mut plain);
        let mut frame = bytes.clone();
        let _ = open_in_place(&server, &mut frame);
    }
}

#[test]
fn direction_is_enforced_on_both_ends() {
    let (device, server) = pair(1);
    let mut out = [0u8; 64];
    assert_eq!(
        seal(&device, FrameType::DownlinkAnswer, 0, false, b"x", &mut out),
        Err(FrameError::WrongDirection)
    );
    assert_eq!(
        seal(&server, FrameType::UplinkData, 0, false, b"x", &mut out),
        Err(FrameError::WrongDirection)
    );
    let n = seal(
        &server,
        FrameType::DownlinkAnswer,
        9,
        false,
        b"ack",
        &mut out,
    )
    .unwrap();
    let mut plain = [0u8; 64];
    assert_eq!(
        open(&server, &out[..n], &mut plain),
        Err(FrameError::WrongDirection)
    );
    let opened = open(&device, &out[..n], &mut plain).unwrap();
    assert_eq!(opened.plaintext, b"ack");
    assert_eq!(opened.header.frame_type, FrameType::DownlinkAnswer);
}

#[test]
fn failed_open_releases_no_plaintext() {
    let (device, server) = pair(1);
    let mut frame = seal_up(&device, 5, false, b"secret telemetry");
    let last = frame.len() - 1;
    frame[last] ^= 0x80;
    let mut plain = [0xAAu8; 64];
    assert_eq!(
        open(&server, &frame, &mut plain),
        Err(FrameError::AuthenticationFailed)
    );
    assert!(plain[..16].iter().all(|&b| b == 0), "buffer must be wiped");
}

#[test]
fn counter_past_24_bits_is_exhausted() {
    let (device, _) = pair(1);
    let mut out = [0u8; 64];
    assert_eq!(
        seal(
            &device,
            FrameType::UplinkData,
            COUNTER_MAX + 1,
            false,
            b"",
            &mut out
        ),
        Err(FrameError::CounterExhausted)
    );
}

#[test]
fn debug_never_shows_keys() {
    let (device, _) = pair(1);
    let text = format!("{device:?}");
    assert!(text.contains("<redacted>"), "{text}");
    let keys = flotta_proto::frame::derive_oscore(&SECRET, &SALT, &[], &[], None).unwrap();
    let key_hex: String = keys.sender_key.iter().map(|b| format!("{b:02x}")).collect();
    let shown = format!("{keys:?} {device:?} {device:#?}");
    assert!(!shown.contains(&key_hex), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", keys.sender_key)),
        "{shown}"
    );
}
