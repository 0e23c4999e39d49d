//! A link address: its kind (`sbd`) and its canonical text (an IMEI of 15
//! decimal digits). Parsing is the only way to make one, so a stored or
//! bound address is always valid.

use std::fmt;
use std::str::FromStr;

/// The kinds of link a device can be bound to by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// Iridium Short Burst Data through Rock7 (RockBLOCK): the modem's IMEI.
    Sbd,
}

impl LinkKind {
    /// The kind as stored and shown (`sbd`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Sbd => "sbd",
        }
    }

    /// Every kind.
    pub const ALL: [LinkKind; 1] = [LinkKind::Sbd];
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LinkKind {
    type Err = InvalidAddress;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LinkKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| InvalidAddress(format!("unknown link kind \"{s}\" (known: sbd)")))
    }
}

/// A refused link kind or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAddress(pub String);

impl InvalidAddress {
    /// Never: the same text stays invalid.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// A valid address of a kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkAddress {
    kind: LinkKind,
    address: String,
}

/// Digits of an IMEI.
pub const IMEI_DIGITS: usize = 15;

impl LinkAddress {
    /// Parse `address` as a `kind` address: for `sbd`, exactly 15 ASCII
    /// digits (surrounding white space ignored). The Luhn check digit is
    /// not checked: Rock7 identifies the modem by whatever IMEI it reports.
    ///
    /// # Errors
    /// [`InvalidAddress`] saying what is wrong.
    pub fn parse(kind: LinkKind, address: &str) -> Result<Self, InvalidAddress> {
        let a = address.trim();
        match kind {
            LinkKind::Sbd => {
                if a.len() != IMEI_DIGITS || !a.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidAddress(format!(
                        "an IMEI is {IMEI_DIGITS} decimal digits, not \"{}\"",
                        a.escape_debug()
                    )));
                }
            }
        }
        Ok(Self {
            kind,
            address: a.to_owned(),
        })
    }

    /// An SBD address (IMEI).
    ///
    /// # Errors
    /// Not 15 digits.
    pub fn imei(imei: &str) -> Result<Self, InvalidAddress> {
        Self::parse(LinkKind::Sbd, imei)
    }

    /// The kind.
    pub fn kind(&self) -> LinkKind {
        self.kind
    }

    /// The canonical address text.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl fmt::Display for LinkAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn imeis_are_fifteen_digits() {
        let a = LinkAddress::imei(" 300234010753370 ").unwrap();
        assert_eq!((a.kind(), a.address()), (LinkKind::Sbd, "300234010753370"));
        assert_eq!(a.to_string(), "sbd 300234010753370");
        for bad in [
            "",
            "30023401075337",
            "3002340107533701",
            "30023401075337x",
            "３00234010753370",
        ] {
            assert!(LinkAddress::imei(bad).is_err(), "{bad}");
        }
        assert_eq!("SBD".parse::<LinkKind>().unwrap(), LinkKind::Sbd);
        assert!("lorawan".parse::<LinkKind>().is_err());
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_fifteen_digits(s in "\\PC{0,20}") {
            let ok = s.trim().len() == 15 && s.trim().bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(LinkAddress::imei(&s).is_ok(), ok);
        }
    }
}
