//! Validated device identifiers and namespaces.
//!
//! Device ids become certificate common names and, later, Kubernetes object
//! names, so they follow the RFC 1123 subdomain rules Kubernetes uses
//! (lowercase alphanumerics, `-` and `.`, at most 253 characters, starting and
//! ending with an alphanumeric). Namespaces follow the RFC 1123 label rules
//! (no `.`, at most 63 characters).

use std::fmt;

/// The common name of the factory registration certificate; never a device id.
pub const REGISTRATION_CN: &str = "register";

/// Why an id or namespace was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Empty or longer than allowed.
    #[error("{what} must be 1 to {max} characters long, got {len}")]
    Length {
        /// "device id" or "namespace".
        what: &'static str,
        /// Maximum length.
        max: usize,
        /// Actual length.
        len: usize,
    },
    /// A character outside the allowed set, or a bad first/last character.
    #[error(
        "{what} \"{value}\" must consist of lowercase letters, digits and '-'{dot}, starting and ending with a letter or digit"
    )]
    Syntax {
        /// "device id" or "namespace".
        what: &'static str,
        /// The refused value (truncated).
        value: String,
        /// `" and '.'"` when dots are allowed.
        dot: &'static str,
    },
    /// The reserved registration common name.
    #[error("\"{0}\" is reserved for the registration certificate")]
    Reserved(String),
}

/// A validated device id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

/// A validated namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

fn check(what: &'static str, s: &str, max: usize, allow_dot: bool) -> Result<(), InvalidName> {
    if s.is_empty() || s.len() > max {
        return Err(InvalidName::Length {
            what,
            max,
            len: s.len(),
        });
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = s.as_bytes();
    let ok_inner = bytes
        .iter()
        .all(|&c| alnum(c) || c == b'-' || (allow_dot && c == b'.'));
    let ok_ends =
        bytes.first().is_some_and(|&c| alnum(c)) && bytes.last().is_some_and(|&c| alnum(c));
    if ok_inner && ok_ends {
        Ok(())
    } else {
        Err(InvalidName::Syntax {
            what,
            value: s.chars().take(64).collect(),
            dot: if allow_dot { " and '.'" } else { "" },
        })
    }
}

impl DeviceId {
    /// Validate a device id.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        check("device id", s, 253, true)?;
        if s == REGISTRATION_CN {
            return Err(InvalidName::Reserved(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Namespace {
    /// Validate a namespace.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        check("namespace", s, 63, false)?;
        Ok(Self(s.to_owned()))
    }

    /// The namespace as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_ids() {
        for id in [
            "dev1",
            "a",
            "edge-01.site-a",
            "0f3c9a7e1b2d4c5f8a9b0c1d2e3f4a5b",
        ] {
            assert_eq!(
                DeviceId::parse(id).map(|d| d.to_string()),
                Ok(id.to_owned())
            );
        }
        assert!(Namespace::parse("default").is_ok());
    }

    #[test]
    fn refuses_bad_ids() {
        for id in [
            "",
            "Dev1",
            "-a",
            "a-",
            "a/b",
            "a b",
            "..",
            "register",
            &"a".repeat(254),
        ] {
            assert!(DeviceId::parse(id).is_err(), "{id:?} accepted");
        }
        assert!(Namespace::parse("a.b").is_err());
        assert!(Namespace::parse(&"a".repeat(64)).is_err());
    }

    proptest! {
        #[test]
        fn accepted_ids_are_path_and_cn_safe(s in "\\PC{0,40}") {
            if let Ok(id) = DeviceId::parse(&s) {
                prop_assert!(id.as_str().bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'));
            }
        }
    }
}
