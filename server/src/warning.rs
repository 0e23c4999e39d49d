//! HTTP `Warning` headers as the Kubernetes API server sends them and
//! kubectl reads them: `299 - "unknown field \"spec.foo\""` (RFC 7234
//! warn-code 299, no agent, the text as a quoted-string).

/// The header value for `text`. Quotes and backslashes are escaped;
/// characters a header cannot hold (control, non-ASCII) become `?`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// The text of a `299 - "..."` header value (any warn-code and agent; a
/// warn-date after the text is ignored), or `None` when it is not one.
pub fn decode(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, ' ');
    let code = parts.next()?;
    let _agent = parts.next()?;
    let rest = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut text = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(text),
            '\\' => text.push(chars.next()?),
            c => text.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_format_round_trips() {
        let text = "unknown field \"spec.foo\"";
        let header = encode(text);
        assert_eq!(header, r#"299 - "unknown field \"spec.foo\"""#);
        assert_eq!(decode(&header).as_deref(), Some(text));
        assert_eq!(
            decode(r#"299 - "a \\ b" "Sat, 01 Jan 2000 00:00:00 GMT""#).as_deref(),
            Some(r"a \ b")
        );
    }

    #[test]
    fn what_a_header_cannot_hold_is_replaced() {
        assert_eq!(encode("é\n"), r#"299 - "??""#);
    }

    #[test]
    fn malformed_values_are_none() {
        for bad in [
            "",
            "299",
            "299 -",
            "299 - text",
            "29 - \"x\"",
            "299 - \"open",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
