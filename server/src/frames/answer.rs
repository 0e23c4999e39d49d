//! The plaintext of the server's one answer to an uplink frame (pure):
//!
//! 1. `Ack`, always;
//! 2. `Config` when the device's configuration version differs from the
//!    server's and the configuration fits what is left of the budget (zlib
//!    JSON when that is smaller); else, on a carrier whose device can fetch
//!    over TLS ([`BigItems::Pending`]), `ConfigPending`, and on one whose
//!    device cannot ([`BigItems::Parts`]), a `Part` of the encoded `Config`.
//!    A configuration whose Secrets were withheld (`withheld.rs`) is always
//!    `ConfigPending` on a carrier whose device can fetch over TLS;
//! 3. `Rekey` when a newer epoch exists than the one the frame came under,
//!    whole if it fits, else (parts carriers) in parts.
//!
//! The `Rekey` is budgeted before the configuration: it is what lets the
//! device keep talking. An answer carries at most one `Part` (the device
//! reassembles one item at a time): the `Rekey`'s while it does not fit
//! whole, else the `Config`'s. Parts need no server state: the inner item's
//! bytes are deterministic (same JSON, same deflate output), so its id is
//! too, and the part sent starts where the device's status says it is
//! (`next_part`). An answer to a duplicate carries the `Ack` alone.

use flotta_proto::compress::deflate_if_smaller;
use flotta_proto::frame::{
    Ack, ConfigEncoding, DownItem, FrameError, ItemWriter, PartProgress, VERSION_MAX, WireItem,
    next_part,
};
use flotta_proto::frame_keys::FrameKeys;

/// A configuration the device does not have yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOffer<'a> {
    /// Its version.
    pub version: &'a str,
    /// Flotta's `device-configuration-message`, JSON, without Secrets
    /// (`withheld.rs`).
    pub json: &'a [u8],
    /// Secrets were left out of `json`: a carrier whose device can fetch
    /// over TLS announces it as `ConfigPending`, never sends it.
    pub tls_only: bool,
}

/// What a carrier does with an item too large for one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BigItems {
    /// Announce a configuration as `ConfigPending`: the device fetches it
    /// over TLS (UDP over NB-IoT: the same modem carries TLS).
    #[default]
    Pending,
    /// Send it in `Part`s over successive answers (LoRaWAN, SBD: no TLS).
    Parts,
}

/// Which item a `Part` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOf {
    /// The encoded `Config`.
    Config,
    /// The encoded `Rekey`.
    Rekey,
}

/// The `Part` an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSent {
    /// Of which item.
    pub of: PartOf,
    /// Where it starts in the inner item.
    pub offset: u32,
    /// Its data bytes.
    pub len: usize,
    /// Bytes of the inner item.
    pub total: u32,
}

/// What [`plaintext`] put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Contents {
    /// A `Config` item.
    pub config: bool,
    /// A `ConfigPending` item.
    pub config_pending: bool,
    /// A `Rekey` item.
    pub rekey: bool,
    /// A `Part` item.
    pub part: Option<PartSent>,
}

/// How the answer treats big items: the carrier's choice and the device's
/// reported progress of an item in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Big {
    /// The carrier's way.
    pub items: BigItems,
    /// The device's status: an item in parts it has not completed.
    pub progress: Option<PartProgress>,
}

/// `item` encoded whole (tag, length, body): the inner bytes of its parts.
fn encoded(item: &DownItem<'_>) -> Result<Vec<u8>, FrameError> {
    let mut inner = vec![0u8; item.encoded_len()];
    item.encode(&mut inner)?;
    Ok(inner)
}

/// Push the next part of `item` if one byte of it fits; what was sent.
fn push_part(
    w: &mut ItemWriter<'_>,
    of: PartOf,
    item: &DownItem<'_>,
    progress: Option<PartProgress>,
    room: usize,
) -> Result<Option<PartSent>, FrameError> {
    let inner = encoded(item)?;
    let Some(part) = next_part(&inner, progress, room.min(w.remaining())) else {
        return Ok(None);
    };
    let DownItem::Part {
        offset,
        total,
        data,
        ..
    } = part
    else {
        return Ok(None);
    };
    w.push(&part)?;
    Ok(Some(PartSent {
        of,
        offset,
        len: data.len(),
        total,
    }))
}

/// The answer's plaintext within `budget` bytes (the answer budget minus
/// the frame overhead).
///
/// # Errors
/// [`FrameError::TooLarge`] if not even the ack fits.
pub fn plaintext(
    ack: Ack,
    config: Option<ConfigOffer<'_>>,
    rekey: Option<&FrameKeys>,
    budget: usize,
    big: Big,
) -> Result<(Vec<u8>, Contents), FrameError> {
    let mut buf = vec![0u8; budget];
    let mut w = ItemWriter::new(&mut buf);
    let mut contents = Contents::default();
    w.push(&DownItem::Ack(ack))?;
    let rekey_item = rekey.map(|k| DownItem::Rekey {
        key_id: flotta_proto::frame::KeyId(k.key_id),
        epoch: k.epoch,
        master_secret: &k.master_secret,
        salt: &k.master_salt,
    });
    let rekey_whole = rekey_item.filter(|i| i.encoded_len() <= w.remaining());
    let rekey_len = rekey_whole.as_ref().map_or(0, WireItem::encoded_len);
    if big.items == BigItems::Parts
        && rekey_whole.is_none()
        && let Some(item) = &rekey_item
    {
        contents.part = push_part(&mut w, PartOf::Rekey, item, big.progress, usize::MAX)?;
    }
    if let Some(offer) = config.filter(|c| c.version.len() <= VERSION_MAX) {
        let room = w.remaining().saturating_sub(rekey_len);
        let (body, zlib) = deflate_if_smaller(offer.json.to_vec());
        let item = DownItem::Config {
            version: offer.version,
            encoding: if zlib {
                ConfigEncoding::ZlibJson
            } else {
                ConfigEncoding::Json
            },
            body: &body,
        };
        let pending = DownItem::ConfigPending {
            version: offer.version,
        };
        let fetch_over_tls = offer.tls_only && big.items == BigItems::Pending;
        if item.encoded_len() <= room && !fetch_over_tls {
            w.push(&item)?;
            contents.config = true;
        } else if big.items == BigItems::Pending {
            if pending.encoded_len() <= room {
                w.push(&pending)?;
                contents.config_pending = true;
            }
        } else if contents.part.is_none() {
            contents.part = push_part(&mut w, PartOf::Config, &item, big.progress, room)?;
        }
    }
    if let Some(item) = rekey_whole
        && item.encoded_len() <= w.remaining()
    {
        w.push(&item)?;
        contents.rekey = true;
    }
    let len = w.len();
    buf.truncate(len);
    Ok((buf, contents))
}

#[cfg(test)]
mod tests {
    use flotta_proto::compress::inflate;
    use flotta_proto::frame::{down_items, inner_item};

    use super::*;

    fn keys() -> FrameKeys {
        FrameKeys {
            key_id: [1, 2, 3, 4],
            epoch: 2,
            master_secret: [7; 32],
            master_salt: vec![9; 8],
        }
    }

    const ACK: Ack = Ack {
        below: 3,
        bitmap: 1,
    };

    #[test]
    fn config_that_fits_goes_whole_and_compressed_when_smaller() {
        let json = format!("{{\"workloads\": [{}]}}", "\"same-name\",".repeat(50));
        let offer = ConfigOffer {
            version: "7",
            json: json.as_bytes(),
            tls_only: false,
        };
        let (text, c) = plaintext(ACK, Some(offer), Some(&keys()), 1188, Big::default()).unwrap();
        assert!(c.config && c.rekey && !c.config_pending);
        let items: Vec<_> = down_items(&text).map(Result::unwrap).collect();
        assert_eq!(items[0], DownItem::Ack(ACK));
        let DownItem::Config {
            version,
            encoding,
            body,
        } = items[1]
        else {
            panic!("{items:?}")
        };
        assert_eq!((version, encoding), ("7", ConfigEncoding::ZlibJson));
        assert_eq!(inflate(body, 1 << 20).unwrap(), json.as_bytes());
        assert!(matches!(items[2], DownItem::Rekey { epoch: 2, .. }));
    }

    #[test]
    fn a_config_too_big_is_pending_and_the_rekey_still_fits() {
        // Letters from a linear congruential generator: zlib cannot shrink
        // them below the budget.
        let mut x = 12_345u32;
        let json: String = (0..3000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + ((x >> 16) % 26) as u8)
            })
            .collect();
        let offer = ConfigOffer {
            version: "8",
            json: json.as_bytes(),
            tls_only: false,
        };
        let (text, c) = plaintext(ACK, Some(offer), Some(&keys()), 200, Big::default()).unwrap();
        assert!(c.config_pending && c.rekey && !c.config);
        let items: Vec<_> = down_items(&text).map(Result::unwrap).collect();
        assert_eq!(items[1], DownItem::ConfigPending { version: "8" });
        assert!(text.len() <= 200);
        // Only the ack: nothing else asked for.
        let (text, c) = plaintext(ACK, None, None, 200, Big::default()).unwrap();
        assert_eq!(c, Contents::default());
        assert_eq!(text.len(), 4);
        assert!(plaintext(ACK, None, None, 2, Big::default()).is_err());
    }

    /// Letters from a linear congruential generator: zlib cannot shrink
    /// them much.
    fn noise(n: usize) -> String {
        let mut x = 12_345u32;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + ((x >> 16) % 26) as u8)
            })
            .collect()
    }

    /// LoRaWAN EU868 DR0: 51 bytes, 39 of plaintext.
    const LORA_ROOM: usize = 51 - flotta_proto::frame::OVERHEAD;

    const PARTS: Big = Big {
        items: BigItems::Parts,
        progress: None,
    };

    /// The one part of an answer: (id, total, offset, data).
    fn part_of(text: &[u8]) -> (u32, u32, u32, Vec<u8>) {
        let items: Vec<_> = down_items(text).map(Result::unwrap).collect();
        assert_eq!(items[0], DownItem::Ack(ACK));
        assert_eq!(items.len(), 2, "{items:?}");
        let DownItem::Part {
            id,
            total,
            offset,
            data,
        } = items[1]
        else {
            panic!("{items:?}")
        };
        (id, total, offset, data.to_vec())
    }

    /// Answers until the device has the whole inner item, as it reports
    /// its progress; returns the inner bytes and the answers it took.
    fn receive(config: Option<ConfigOffer<'_>>, rekey: Option<&FrameKeys>) -> (Vec<u8>, usize) {
        let mut got = Vec::new();
        let mut big = PARTS;
        let mut answers = 0;
        loop {
            let (text, c) = plaintext(ACK, config, rekey, LORA_ROOM, big).unwrap();
            answers += 1;
            assert!(text.len() <= LORA_ROOM);
            assert!(!c.config && !c.config_pending && !c.rekey);
            let (id, total, offset, data) = part_of(&text);
            assert_eq!(offset as usize, got.len());
            got.extend_from_slice(&data);
            if got.len() == total as usize {
                assert_eq!(flotta_proto::frame::part_id(&got), id);
                return (got, answers);
            }
            big.progress = Some(PartProgress {
                id,
                offset: got.len() as u32,
            });
        }
    }

    #[test]
    fn at_a_lorawan_budget_a_config_goes_in_parts_and_decodes_whole() {
        let json = noise(300);
        let offer = ConfigOffer {
            version: "9",
            json: json.as_bytes(),
            tls_only: false,
        };
        let (inner, answers) = receive(Some(offer), None);
        assert!(answers >= 300 / LORA_ROOM, "{answers}");
        let DownItem::Config {
            version,
            encoding,
            body,
        } = inner_item(&inner).unwrap()
        else {
            panic!()
        };
        assert_eq!(version, "9");
        let json_back = match encoding {
            ConfigEncoding::Json => body.to_vec(),
            ConfigEncoding::ZlibJson => inflate(body, 1 << 20).unwrap(),
        };
        assert_eq!(json_back, json.as_bytes());
    }

    #[test]
    fn parts_resume_at_the_reported_offset_and_restart_for_another_id() {
        let json = noise(300);
        let offer = ConfigOffer {
            version: "9",
            json: json.as_bytes(),
            tls_only: false,
        };
        let (first, c) = plaintext(ACK, Some(offer), None, LORA_ROOM, PARTS).unwrap();
        let (id, total, offset, data) = part_of(&first);
        assert_eq!(offset, 0);
        assert_eq!(
            c.part.map(|p| (p.of, p.len)),
            Some((PartOf::Config, data.len()))
        );
        // Deterministic: the same configuration, the same bytes and id.
        assert_eq!(
            plaintext(ACK, Some(offer), None, LORA_ROOM, PARTS)
                .unwrap()
                .0,
            first
        );
        let at = |progress| {
            let big = Big {
                items: BigItems::Parts,
                progress: Some(progress),
            };
            part_of(&plaintext(ACK, Some(offer), None, LORA_ROOM, big).unwrap().0)
        };
        let resumed = at(PartProgress { id, offset: 54 });
        assert_eq!((resumed.0, resumed.1, resumed.2), (id, total, 54));
        // Another item's progress (an older configuration), or past the end.
        assert_eq!(
            at(PartProgress {
                id: !id,
                offset: 54
            })
            .2,
            0
        );
        assert_eq!(at(PartProgress { id, offset: total }).2, 0);
    }

    #[test]
    fn a_rekey_too_big_goes_in_parts_before_the_config() {
        let json = noise(300);
        let offer = ConfigOffer {
            version: "9",
            json: json.as_bytes(),
            tls_only: false,
        };
        let (inner, answers) = receive(Some(offer), Some(&keys()));
        assert_eq!(answers, 2);
        assert!(matches!(
            inner_item(&inner).unwrap(),
            DownItem::Rekey { epoch: 2, .. }
        ));
    }

    #[test]
    fn a_carrier_with_tls_still_gets_config_pending_and_duplicates_the_ack_alone() {
        let json = noise(300);
        let offer = ConfigOffer {
            version: "9",
            json: json.as_bytes(),
            tls_only: false,
        };
        let (text, c) = plaintext(ACK, Some(offer), None, LORA_ROOM, Big::default()).unwrap();
        assert!(c.config_pending && c.part.is_none());
        let items: Vec<_> = down_items(&text).map(Result::unwrap).collect();
        assert_eq!(items[1], DownItem::ConfigPending { version: "9" });
        // A small configuration still goes whole on a parts carrier.
        let small = ConfigOffer {
            version: "9",
            json: b"{}",
            tls_only: false,
        };
        let (_, c) = plaintext(ACK, Some(small), None, LORA_ROOM, PARTS).unwrap();
        assert!(c.config && c.part.is_none());
        let (text, c) = plaintext(ACK, None, None, LORA_ROOM, PARTS).unwrap();
        assert_eq!((c, text.len()), (Contents::default(), 4));
    }

    #[test]
    fn a_configuration_with_secrets_withheld_is_fetched_over_tls_where_the_device_can() {
        let withheld = ConfigOffer {
            version: "9",
            json: br#"{"secrets_withheld":["secret db"]}"#,
            tls_only: true,
        };
        // It fits, but the device can fetch it whole, Secrets included.
        let (text, c) = plaintext(ACK, Some(withheld), None, 1188, Big::default()).unwrap();
        assert!(c.config_pending && !c.config, "{c:?}");
        let items: Vec<_> = down_items(&text).map(Result::unwrap).collect();
        assert_eq!(items[1], DownItem::ConfigPending { version: "9" });
        // A device that cannot (LoRaWAN, SBD) gets it without them.
        let (_, c) = plaintext(ACK, Some(withheld), None, LORA_ROOM, PARTS).unwrap();
        assert!(
            !c.config_pending && c.part.is_some_and(|p| p.of == PartOf::Config),
            "{c:?}"
        );
    }
}
