//! Property tests of down items carried in parts (`frame/part.rs`):
//! - any `Config` or `Rekey` item split by [`next_part`] at any sequence of
//!   budgets (each at least the smallest part) reassembles to its exact
//!   bytes, which [`inner_item`] decodes to the same item; resuming from a
//!   reported offset continues, another id's offset restarts at 0;
//! - a status with or without progress round-trips; a status as written
//!   before flag bit 1 (no flags, flags `1`) still decodes, and one with
//!   progress decodes the same as far as an old decoder reads it;
//! - [`inner_item`] refuses other tags, parts of parts and trailing bytes.

use flotta_proto::frame::{
    ConfigEncoding, DownItem, KeyId, PartProgress, UpItem, WireItem, down_items, inner_item,
    next_part, part_id, up_items,
};
use proptest::prelude::*;

fn encode<I: WireItem>(item: &I) -> Vec<u8> {
    let mut buf = vec![0u8; item.encoded_len()];
    item.encode(&mut buf).expect("sized exactly");
    buf
}

/// Smallest answer room in which a part carries one byte of an item of up
/// to 16 KiB: tag 1, length 1, id 4, total 2, offset 2, data 1.
const MIN_PART_ROOM: usize = 11;

fn inner() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            "[a-z0-9.]{0,64}",
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..3000)
        )
            .prop_map(|(version, zlib, body)| encode(&DownItem::Config {
                version: &version,
                encoding: if zlib {
                    ConfigEncoding::ZlibJson
                } else {
                    ConfigEncoding::Json
                },
                body: &body,
            })),
        (
            any::<[u8; 4]>(),
            any::<u32>(),
            any::<[u8; 32]>(),
            prop::collection::vec(any::<u8>(), 0..=32)
        )
            .prop_map(|(k, epoch, secret, salt)| encode(&DownItem::Rekey {
                key_id: KeyId(k),
                epoch,
                master_secret: &secret,
                salt: &salt,
            })),
    ]
}

proptest! {
    #[test]
    fn parts_at_any_budgets_reassemble(
        inner in inner(),
        budgets in prop::collection::vec(MIN_PART_ROOM..300, 1..40),
    ) {
        let mut got: Vec<u8> = Vec::new();
        let mut progress = None;
        let mut i = 0;
        while got.len() < inner.len() {
            let room = budgets[i % budgets.len()];
            i += 1;
            let part = next_part(&inner, progress, room).expect("one byte fits");
            let bytes = encode(&part);
            prop_assert!(bytes.len() <= room);
            let back: Vec<_> = down_items(&bytes).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(back.as_slice(), &[part][..]);
            let DownItem::Part { id, total, offset, data } = part else { unreachable!() };
            prop_assert_eq!(id, part_id(&inner));
            prop_assert_eq!(total as usize, inner.len());
            prop_assert_eq!(offset as usize, got.len());
            got.extend_from_slice(data);
            progress = Some(PartProgress { id, offset: got.len() as u32 });
        }
        prop_assert_eq!(&got, &inner);
        let item = inner_item(&got).unwrap();
        prop_assert_eq!(encode(&item), inner.clone());
        // Another item's progress (or one past the end) restarts at 0.
        let other = PartProgress { id: part_id(&inner) ^ 1, offset: 5 };
        for p in [Some(other), Some(PartProgress { id: part_id(&inner), offset: inner.len() as u32 }), None] {
            let Some(DownItem::Part { offset, .. }) = next_part(&inner, p, 64) else { unreachable!() };
            prop_assert_eq!(offset, 0);
        }
    }

    #[test]
    fn status_with_or_without_progress_roundtrips(
        version in "[a-z0-9.]{0,64}",
        low_water in any::<u32>(),
        ack_wanted in any::<bool>(),
        partial in prop::option::of((any::<u32>(), any::<u32>())),
    ) {
        let partial = partial.map(|(id, offset)| PartProgress { id, offset });
        let status = UpItem::Status { config_version: &version, low_water, ack_wanted, partial };
        let bytes = encode(&status);
        let back: Vec<_> = up_items(&bytes).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(back, vec![status]);
        // Without progress, the bytes are exactly those written before
        // flag bit 1 existed.
        if partial.is_none() {
            let flags = usize::from(ack_wanted);
            prop_assert_eq!(bytes.len(), encode(&UpItem::Status {
                config_version: &version, low_water, ack_wanted: false, partial: None,
            }).len() + flags);
        }
    }
}

#[test]
fn old_statuses_still_decode() {
    // tag 1, len 3: version "" (0), low water 5, no flags.
    let plain = [1u8, 2, 0, 5];
    let items: Vec<_> = up_items(&plain).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        items,
        vec![UpItem::Status {
            config_version: "",
            low_water: 5,
            ack_wanted: false,
            partial: None
        }]
    );
    // Flags 1 (ack wanted), and an unknown bit 2 with bytes after it.
    let plain = [1u8, 3, 0, 5, 1, 1u8, 5, 0, 5, 4, 9, 9];
    let items: Vec<_> = up_items(&plain[..5]).collect::<Result<_, _>>().unwrap();
    assert!(matches!(
        items[..],
        [UpItem::Status {
            ack_wanted: true,
            partial: None,
            ..
        }]
    ));
    let items: Vec<_> = up_items(&plain[5..]).collect::<Result<_, _>>().unwrap();
    assert!(matches!(
        items[..],
        [UpItem::Status {
            ack_wanted: false,
            partial: None,
            ..
        }]
    ));
}

#[test]
fn progress_is_after_the_flags_where_old_decoders_stop() {
    let status = UpItem::Status {
        config_version: "7",
        low_water: 300,
        ack_wanted: true,
        partial: Some(PartProgress {
            id: 0x0102_0304,
            offset: 200,
        }),
    };
    // tag, len 11: version 1 "7", low water 2, flags 3, id 4, offset 2.
    assert_eq!(
        encode(&status),
        [1, 11, 1, b'7', 0xac, 0x02, 3, 1, 2, 3, 4, 0xc8, 0x01]
    );
    // Progress announced but truncated: an error, never a panic.
    assert!(up_items(&[1u8, 7, 1, b'7', 0xac, 0x02, 2, 1, 2]).all(|r| r.is_err()));
}

#[test]
fn inner_item_takes_config_and_rekey_only() {
    let config = encode(&DownItem::Config {
        version: "3",
        encoding: ConfigEncoding::Json,
        body: b"{}",
    });
    assert!(matches!(
        inner_item(&config),
        Ok(DownItem::Config { version: "3", .. })
    ));
    let mut trailing = config.clone();
    trailing.push(0);
    assert!(inner_item(&trailing).is_err());
    assert!(inner_item(&config[..config.len() - 1]).is_err());
    let pending = encode(&DownItem::ConfigPending { version: "3" });
    assert!(inner_item(&pending).is_err());
    let part = encode(&DownItem::Part {
        id: part_id(&config),
        total: config.len() as u32,
        offset: 0,
        data: &config,
    });
    assert!(inner_item(&part).is_err(), "no parts of parts");
    assert!(inner_item(&[0x7f, 0]).is_err());
    assert!(inner_item(&[]).is_err());
}

#[test]
fn parts_outside_their_item_are_refused() {
    let bad = DownItem::Part {
        id: 1,
        total: 4,
        offset: 2,
        data: &[1, 2, 3],
    };
    assert!(bad.encode(&mut [0u8; 32]).is_err());
    // tag 5, len 8: id 0 0 0 1, total 4, offset 2, data 1 2: fine; total 3 not.
    assert!(down_items(&[5u8, 8, 0, 0, 0, 1, 4, 2, 1, 2]).all(|r| r.is_ok()));
    assert!(down_items(&[5u8, 8, 0, 0, 0, 1, 3, 2, 1, 2]).all(|r| r.is_err()));
    assert!(down_items(&[5u8, 6, 0, 0, 0, 1, 4, 2]).all(|r| r.is_err()));
}
