//! The opaque cursor of the admin feed routes: base64url (no padding) of a
//! small JSON document naming the order and the position of a row
//! ([`crate::store::FeedKey`]). Clients only hand it back; anything else is
//! refused with a 400 that says so.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::store::{FeedKey, FeedOrder};

/// Longest cursor text accepted.
const MAX_LEN: usize = 1024;

/// A position in one of the feeds' orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The order the position belongs to.
    #[serde(rename = "o")]
    pub(crate) order: FeedOrder,
    /// The position (exclusive: a read goes on after it).
    #[serde(rename = "k")]
    pub(crate) key: FeedKey,
}

impl Cursor {
    /// The text handed to clients.
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A cursor from a client; the error says what is wrong with it.
    pub(crate) fn decode(text: &str) -> Result<Self, String> {
        let bad = |why: String| {
            format!(
                "invalid cursor {text:.40?}: {why} (pass back the `next` or `id` the server gave)"
            )
        };
        if text.len() > MAX_LEN {
            return Err(bad(format!("longer than {MAX_LEN} characters")));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|e| bad(format!("not base64url: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clear_refusals() {
        let c = Cursor {
            order: FeedOrder::Arrival,
            key: FeedKey {
                t: 17,
                device: "dev-1".into(),
                source: 1,
                a: 3,
                b: 2,
            },
        };
        let text = c.encode();
        assert!(
            text.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        );
        assert_eq!(Cursor::decode(&text), Ok(c));
        for bad in ["", "!!", "e30", &"A".repeat(2000)] {
            let e = Cursor::decode(bad).unwrap_err();
            assert!(e.starts_with("invalid cursor"), "{bad}: {e}");
        }
    }
}
