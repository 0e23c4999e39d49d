//! A link address: its kind (`sbd`, `lorawan`) and its canonical text (an
//! IMEI of 15 decimal digits; a DevEUI of 16 hex digits, lower case).
//! Parsing is the only way to make one, so a stored or bound address is
//! always valid.

use std::fmt;
use std::str::FromStr;

/// The kinds of link a device can be bound to by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// Iridium Short Burst Data through Rock7 (RockBLOCK): the modem's IMEI.
    Sbd,
    /// LoRaWAN through a network server (ChirpStack v4, The Things Stack
    /// v3): the end device's DevEUI (EUI-64).
    Lorawan,
}

impl LinkKind {
    /// The kind as stored and shown (`sbd`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Sbd => "sbd",
            LinkKind::Lorawan => "lorawan",
        }
    }

    /// Every kind.
    pub const ALL: [LinkKind; 2] = [LinkKind::Sbd, LinkKind::Lorawan];
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
            .ok_or_else(|| {
                InvalidAddress(format!("unknown link kind \"{s}\" (known: sbd, lorawan)"))
            })
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

/// Hex digits of a DevEUI (EUI-64).
pub const DEV_EUI_HEX_DIGITS: usize = 16;

impl LinkAddress {
    /// Parse `address` as a `kind` address (surrounding white space
    /// ignored): for `sbd`, exactly 15 ASCII digits (the Luhn check digit
    /// is not checked: Rock7 identifies the modem by whatever IMEI it
    /// reports); for `lorawan`, exactly 16 hex digits in either case
    /// (ChirpStack writes DevEUIs in lower case, The Things Stack in upper
    /// case), kept in lower case.
    ///
    /// # Errors
    /// [`InvalidAddress`] saying what is wrong.
    pub fn parse(kind: LinkKind, address: &str) -> Result<Self, InvalidAddress> {
        let a = address.trim();
        match kind {
            LinkKind::Lorawan => {
                if a.len() != DEV_EUI_HEX_DIGITS || !a.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(InvalidAddress(format!(
                        "a DevEUI is {DEV_EUI_HEX_DIGITS} hex digits (EUI-64, no separators), \
                         not \"{}\"",
                        a.escape_debug()
                    )));
                }
                return Ok(Self {
                    kind,
                    address: a.to_ascii_lowercase(),
                });
            }
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

    /// A LoRaWAN address (DevEUI), lower case.
    ///
    /// # Errors
    /// Not 16 hex digits.
    pub fn dev_eui(dev_eui: &str) -> Result<Self, InvalidAddress> {
        Self::parse(LinkKind::Lorawan, dev_eui)
    }

    /// A LoRaWAN address from the DevEUI's 8 bytes (most significant first,
    /// as networks print it).
    pub fn dev_eui_bytes(dev_eui: [u8; 8]) -> Self {
        use fmt::Write;
        let mut address = String::with_capacity(DEV_EUI_HEX_DIGITS);
        for b in dev_eui {
            let _ = write!(address, "{b:02x}");
        }
        Self {
            kind: LinkKind::Lorawan,
            address,
        }
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
        assert_eq!("LoRaWAN".parse::<LinkKind>().unwrap(), LinkKind::Lorawan);
        assert!("lora".parse::<LinkKind>().is_err());
    }

    #[test]
    fn dev_euis_are_sixteen_hex_digits_kept_in_lower_case() {
        let a = LinkAddress::dev_eui(" 70B3D57ED005A1B2 ").unwrap();
        assert_eq!(
            (a.kind(), a.address()),
            (LinkKind::Lorawan, "70b3d57ed005a1b2")
        );
        assert_eq!(a, LinkAddress::dev_eui("70b3d57ed005a1b2").unwrap());
        assert_eq!(
            a,
            LinkAddress::dev_eui_bytes([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x05, 0xa1, 0xb2])
        );
        assert_eq!(a.to_string(), "lorawan 70b3d57ed005a1b2");
        for bad in [
            "",
            "70b3d57ed005a1b",
            "70b3d57ed005a1b2c",
            "70-b3-d5-7e-d0-05-a1-b2",
            "70b3d57ed005a1g2",
            "0x70b3d57ed005a1",
        ] {
            let err = LinkAddress::dev_eui(bad).unwrap_err();
            assert!(err.to_string().contains("16 hex digits"), "{bad}: {err}");
        }
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_fifteen_digits(s in "\\PC{0,20}") {
            let ok = s.trim().len() == 15 && s.trim().bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(LinkAddress::imei(&s).is_ok(), ok);
        }

        #[test]
        fn dev_eui_parse_accepts_exactly_sixteen_hex_digits(s in "\\PC{0,20}|[0-9a-fA-F]{16}") {
            let t = s.trim();
            let ok = t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit());
            let parsed = LinkAddress::dev_eui(&s);
            prop_assert_eq!(parsed.is_ok(), ok);
            if let Ok(a) = parsed {
                prop_assert_eq!(a.address(), t.to_ascii_lowercase());
                prop_assert_eq!(LinkAddress::dev_eui(&t.to_ascii_uppercase()).unwrap(), a);
            }
        }

        #[test]
        fn dev_eui_bytes_and_text_agree(b in any::<[u8; 8]>()) {
            let a = LinkAddress::dev_eui_bytes(b);
            prop_assert_eq!(LinkAddress::dev_eui(a.address()).unwrap(), a);
        }
    }
}
