//! A device's sealed-frame key material as it travels over mTLS (the batch
//! route's answer, the registration answer) and as it is stored on disk
//! (the agent's `<data_dir>/frame/context.json`, a pre-provisioned board
//! image's file).
//!
//! In human-readable formats (JSON) the byte fields are lowercase hex; in
//! postcard they are plain bytes. `Debug` never shows the secret.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes of the master secret.
pub const SECRET_LEN: usize = 32;
/// The longest master salt accepted.
pub const SALT_MAX_LEN: usize = 32;

/// Key id, epoch, master secret and salt of one frame context.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrameKeys {
    /// Names the context on carriers that do not identify the device (UDP).
    #[serde(with = "bytes4")]
    pub key_id: [u8; 4],
    /// Increases at every rotation.
    pub epoch: u32,
    /// The master secret.
    #[serde(with = "bytes32")]
    pub master_secret: [u8; SECRET_LEN],
    /// The master salt (8 bytes as made by the server).
    #[serde(with = "bytes_vec")]
    pub master_salt: Vec<u8>,
}

impl fmt::Debug for FrameKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameKeys")
            .field("key_id", &hex(&self.key_id))
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl FrameKeys {
    /// The key id as lowercase hex (how operators and logs name it).
    #[must_use]
    pub fn key_id_hex(&self) -> String {
        hex(&self.key_id)
    }

    /// Check the lengths a decoder cannot: the salt.
    ///
    /// # Errors
    /// A message if the salt is longer than [`SALT_MAX_LEN`].
    pub fn validate(&self) -> Result<(), String> {
        if self.master_salt.len() > SALT_MAX_LEN {
            return Err(format!(
                "master salt of {} bytes (at most {SALT_MAX_LEN})",
                self.master_salt.len()
            ));
        }
        Ok(())
    }
}

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes of a hex string (either case).
///
/// # Errors
/// A message for odd lengths and non-hex characters.
pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("hex string of odd length".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("not hex at offset {i}"))
        })
        .collect()
}

fn ser_bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&hex(bytes))
    } else {
        s.serialize_bytes(bytes)
    }
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    if d.is_human_readable() {
        let text = String::deserialize(d)?;
        unhex(&text).map_err(D::Error::custom)
    } else {
        Ok(serde_bytes_vec(d)?)
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                if out.len() >= 4096 {
                    return Err(A::Error::custom("byte field too long"));
                }
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_bytes(V)
}

fn de_array<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    let v = de_bytes(d)?;
    v.as_slice()
        .try_into()
        .map_err(|_| D::Error::custom(format!("expected {N} bytes, got {}", v.len())))
}

mod bytes4 {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
        super::ser_bytes(b, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 4], D::Error> {
        super::de_array(d)
    }
}

mod bytes32 {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        super::ser_bytes(b, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        super::de_array(d)
    }
}

mod bytes_vec {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        super::ser_bytes(b, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        super::de_bytes(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> FrameKeys {
        FrameKeys {
            key_id: [0xde, 0xad, 0xbe, 0xef],
            epoch: 7,
            master_secret: [0x11; 32],
            master_salt: vec![1, 2, 3, 4, 5, 6, 7, 8],
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", keys());
        assert!(text.contains("deadbeef") && !text.contains("1111") && !text.contains("17"));
    }

    #[test]
    fn postcard_is_compact_bytes() {
        let bytes = postcard::to_allocvec(&keys()).unwrap();
        // 1+4 key id, 1 epoch, 1+32 secret, 1+8 salt
        assert_eq!(bytes.len(), 48);
        assert_eq!(postcard::from_bytes::<FrameKeys>(&bytes).unwrap(), keys());
    }

    #[test]
    fn json_is_hex_and_strict() {
        let text = serde_json::to_string(&keys()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"keyId":"deadbeef","epoch":7,"masterSecret":"{}","masterSalt":"0102030405060708"}}"#,
                "11".repeat(32)
            )
        );
        assert_eq!(serde_json::from_str::<FrameKeys>(&text).unwrap(), keys());
        let short = text.replace("deadbeef", "deadbe");
        assert!(
            serde_json::from_str::<FrameKeys>(&short)
                .unwrap_err()
                .to_string()
                .contains("expected 4 bytes")
        );
        let extra = text.replace(r#""epoch""#, r#""x":1,"epoch""#);
        assert!(serde_json::from_str::<FrameKeys>(&extra).is_err());
    }

    #[test]
    fn postcard_refuses_wrong_lengths() {
        let mut bytes = postcard::to_allocvec(&keys()).unwrap();
        bytes[0] = 3; // key id length
        assert!(postcard::from_bytes::<FrameKeys>(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128), text in ".{0,64}") {
            let _ = postcard::from_bytes::<FrameKeys>(&bytes);
            let _ = unhex(&text);
        }

        #[test]
        fn hex_roundtrips(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes.clone());
            prop_assert_eq!(unhex(&hex(&bytes).to_uppercase()).unwrap(), bytes);
        }
    }
}
