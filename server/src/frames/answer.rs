//! The plaintext of the server's one answer to an uplink frame (pure):
//!
//! 1. `Ack`, always;
//! 2. `Config` when the device's configuration version differs from the
//!    server's and the configuration fits what is left of the budget (zlib
//!    JSON when that is smaller), else `ConfigPending` (fetch it over TLS);
//! 3. `Rekey` when a newer epoch exists than the one the frame came under.
//!
//! The `Rekey` is budgeted before the configuration: it is what lets the
//! device keep talking. An answer to a duplicate carries the `Ack` alone.

use flotta_proto::compress::deflate_if_smaller;
use flotta_proto::frame::{
    Ack, ConfigEncoding, DownItem, FrameError, ItemWriter, VERSION_MAX, WireItem,
};
use flotta_proto::frame_keys::FrameKeys;

/// A configuration the device does not have yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOffer<'a> {
    /// Its version.
    pub version: &'a str,
    /// Flotta's `device-configuration-message`, JSON.
    pub json: &'a [u8],
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
    let rekey_len = rekey_item.as_ref().map_or(0, |i| i.encoded_len());
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
        if item.encoded_len() <= room {
            w.push(&item)?;
            contents.config = true;
        } else if pending.encoded_len() <= room {
            w.push(&pending)?;
            contents.config_pending = true;
        }
    }
    if let Some(item) = rekey_item
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
    use flotta_proto::frame::down_items;

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
        };
        let (text, c) = plaintext(ACK, Some(offer), Some(&keys()), 1188).unwrap();
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
        };
        let (text, c) = plaintext(ACK, Some(offer), Some(&keys()), 200).unwrap();
        assert!(c.config_pending && c.rekey && !c.config);
        let items: Vec<_> = down_items(&text).map(Result::unwrap).collect();
        assert_eq!(items[1], DownItem::ConfigPending { version: "8" });
        assert!(text.len() <= 200);
        // Only the ack: nothing else asked for.
        let (text, c) = plaintext(ACK, None, None, 200).unwrap();
        assert_eq!(c, Contents::default());
        assert_eq!(text.len(), 4);
        assert!(plaintext(ACK, None, None, 2).is_err());
    }
}
