//! Syntax of Kubernetes label keys and values, as the API server checks it.
//!
//! A key is an optional DNS-subdomain prefix and `/`, then a name of at most 63
//! characters: alphanumerics, `-`, `_` and `.`, starting and ending with an
//! alphanumeric. A value is empty or follows the same rule as the name.

/// Longest label name (the part of a key after `/`) and longest label value.
pub const MAX_LABEL_NAME_BYTES: usize = 63;
/// Longest key prefix (the DNS subdomain before `/`).
pub const MAX_LABEL_PREFIX_BYTES: usize = 253;

/// Checks a label key; the error says what is wrong.
pub fn validate_label_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        None => key,
        Some((prefix, name)) => {
            validate_dns_subdomain(prefix)?;
            name
        }
    };
    if name.is_empty() {
        return Err("name part must not be empty");
    }
    validate_name_chars(name)
}

/// Checks a label value; the error says what is wrong.
pub fn validate_label_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Ok(());
    }
    validate_name_chars(value)
}

/// The rule shared by key names and values (non-empty input).
fn validate_name_chars(name: &str) -> Result<(), &'static str> {
    if name.len() > MAX_LABEL_NAME_BYTES {
        return Err("must be no more than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may contain only alphanumerics, '-', '_' and '.'");
    }
    if !starts_and_ends_alphanumeric(name, u8::is_ascii_alphanumeric) {
        return Err("must start and end with an alphanumeric character");
    }
    Ok(())
}

/// A lowercase RFC 1123 subdomain: dot-separated labels of `[a-z0-9-]`, each
/// starting and ending with an alphanumeric.
fn validate_dns_subdomain(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Err("prefix before '/' must not be empty");
    }
    if prefix.len() > MAX_LABEL_PREFIX_BYTES {
        return Err("prefix must be no more than 253 characters");
    }
    let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    for part in prefix.split('.') {
        if !part.bytes().all(|b| lower_alnum(&b) || b == b'-')
            || !starts_and_ends_alphanumeric(part, lower_alnum)
        {
            return Err("prefix must be a lowercase DNS subdomain");
        }
    }
    Ok(())
}

fn starts_and_ends_alphanumeric(s: &str, alnum: impl Fn(&u8) -> bool) -> bool {
    let bytes = s.as_bytes();
    matches!((bytes.first(), bytes.last()), (Some(first), Some(last)) if alnum(first) && alnum(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_keys_flotta_uses() {
        for key in [
            "device.cpu-architecture",
            "flotta/member-of",
            "workload/my-app",
            "app.kubernetes.io/name",
            "a",
            "A_b.9",
        ] {
            assert_eq!(validate_label_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn rejects_malformed_keys() {
        for key in [
            "",
            "/name",
            "prefix/",
            "Upper.Case/name",
            "a/b/c",
            "-leading",
            "trailing.",
            "sp ace",
            "bad..dots/name",
            &"x".repeat(64),
            &format!("{}/n", "p".repeat(254)),
        ] {
            assert!(validate_label_key(key).is_err(), "{key:?} accepted");
        }
    }

    #[test]
    fn name_part_may_be_exactly_63_bytes() {
        assert_eq!(validate_label_key(&"x".repeat(63)), Ok(()));
        assert_eq!(validate_label_value(&"x".repeat(63)), Ok(()));
        assert!(validate_label_value(&"x".repeat(64)).is_err());
    }

    #[test]
    fn values_may_be_empty_but_not_malformed() {
        assert_eq!(validate_label_value(""), Ok(()));
        assert_eq!(
            validate_label_value("intelrcoretmi7-8650ucpu1.90ghz"),
            Ok(())
        );
        for value in ["-x", "x-", "a/b", "é", "a b"] {
            assert!(validate_label_value(value).is_err(), "{value:?} accepted");
        }
    }
}
