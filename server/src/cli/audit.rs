//! `flotta-server audit`: the audit log as a table (newest first), and
//! `admin-token`'s printout (the token once, and the entry to configure).

use serde_json::Value;

use crate::admin_auth::AdminRole;

/// `ID TIME PRINCIPAL ROLE METHOD PATH STATUS DETAIL`, one line per record.
pub fn format_audit(items: &[Value]) -> String {
    let header = [
        "ID",
        "TIME",
        "PRINCIPAL",
        "ROLE",
        "METHOD",
        "PATH",
        "STATUS",
        "DETAIL",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    rows.extend(items.iter().map(|i| {
        let text = |k: &str| match i.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        [
            "id",
            "time",
            "principal",
            "role",
            "method",
            "path",
            "status",
            "detail",
        ]
        .iter()
        .map(|k| text(k))
        .collect()
    }));
    super::output::aligned(&rows, "")
}

/// What `admin-token` prints: the token (shown once), and the
/// `[[admin_tokens]]` entry holding only its hash.
pub fn format_new_token(name: &str, role: AdminRole, token: &str) -> String {
    format!(
        "# The token (shown once; give it to {name}, e.g. as FLOTTA_ADMIN_TOKEN or a --token-file):\n\
         # {token}\n\
         # Add to the server's configuration and restart it:\n\
         [[admin_tokens]]\n\
         name = \"{name}\"\n\
         role = \"{}\"\n\
         sha256 = \"{}\"\n",
        role.as_str(),
        crate::admin_auth::token::hash_hex(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_printed_entry_configures_the_token() {
        let token = crate::admin_auth::token::generate().unwrap();
        let text = format_new_token("ops", AdminRole::ReadOnly, &token);
        assert!(text.contains(&token));
        let config = Config::from_toml_str(&text).unwrap();
        let table = crate::admin_auth::token::TokenTable::new(&config.admin_tokens);
        assert_eq!(table.find(&token), Some(("ops", AdminRole::ReadOnly)));
    }

    #[test]
    fn audit_rows() {
        let items = vec![serde_json::json!({
            "id": 7, "time": "2026-12-03T10:00:00Z", "principal": "alice", "role": "admin",
            "method": "POST", "path": "/apis/devices/d1/approve", "status": 200, "detail": ""
        })];
        let out = format_audit(&items);
        let line = out.lines().nth(1).unwrap();
        for word in ["7", "alice", "POST", "/apis/devices/d1/approve", "200"] {
            assert!(line.split_whitespace().any(|w| w == word), "{out}");
        }
    }
}
