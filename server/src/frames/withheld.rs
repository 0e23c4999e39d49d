//! Secrets travel only over mutual TLS (issue #12): never in a sealed
//! frame, however well sealed, since a frame crosses a network server or
//! Rock7 and lives in modem buffers on the way. So the configuration a
//! frame answer offers is the device's message without its `secrets` and
//! without each workload's `imageRegistries.authFile`, with the names of
//! what was left out in `secrets_withheld`. A carrier whose device can
//! fetch over TLS (UDP over NB-IoT) announces such a configuration as
//! `ConfigPending` instead, so the device fetches it whole over mutual TLS
//! (`answer.rs`); one whose device cannot (LoRaWAN, SBD) sends it without
//! them, and the device says which workloads lack a Secret.

use serde_json::Value;

/// `message` as frames may carry it, and the names of what was left out
/// (`secret db`, `auth file of web`): empty when nothing was.
pub fn without_secrets(message: &Value) -> (Value, Vec<String>) {
    let mut out = message.clone();
    let mut withheld: Vec<String> = Vec::new();
    let Some(obj) = out.as_object_mut() else {
        return (out, withheld);
    };
    if let Some(list) = obj.remove("secrets") {
        withheld.extend(
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("name")?.as_str())
                .map(|n| format!("secret {n}")),
        );
    }
    for w in obj
        .get_mut("workloads")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let name = w
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(reg) = w.get_mut("imageRegistries").and_then(Value::as_object_mut)
            && reg.remove("authFile").is_some()
        {
            withheld.push(format!("auth file of {name}"));
        }
    }
    if !withheld.is_empty() {
        obj.insert("secrets_withheld".into(), Value::from(withheld.clone()));
    }
    (out, withheld)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_and_auth_files_are_left_out_and_named() {
        let message = json!({"version": "7", "secrets": [{"name": "db", "data": "{}"}],
            "workloads": [{"name": "web", "imageRegistries": {"authFile": "{\"auths\":{}}"}},
                          {"name": "plain"}]});
        let (framed, withheld) = without_secrets(&message);
        assert_eq!(withheld, ["secret db", "auth file of web"]);
        assert!(framed.get("secrets").is_none());
        assert_eq!(framed["workloads"][0]["imageRegistries"], json!({}));
        assert_eq!(
            framed["secrets_withheld"],
            json!(["secret db", "auth file of web"])
        );
        let text = framed.to_string();
        assert!(
            !text.contains("auths") && !text.contains("\"data\""),
            "{text}"
        );
        // Nothing secret: the message as it was.
        let plain = json!({"version": "7", "workloads": [{"name": "plain"}]});
        assert_eq!(without_secrets(&plain), (plain.clone(), Vec::new()));
    }
}
