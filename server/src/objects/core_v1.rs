//! Kubernetes' core v1 kinds the server keeps beside Flotta's CRDs, as
//! Kubernetes validates them on write: ConfigMaps and Secrets, which
//! EdgeWorkloads reference (`controller/configmaps.rs`,
//! `controller/secrets.rs`). Unknown top-level fields are left out and
//! reported, as for the CRDs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// The most a Secret may hold, decoded (Kubernetes' limit).
pub const MAX_SECRET_BYTES: usize = 1 << 20;

/// The type of Secrets that hold a registry auth file, under
/// [`DOCKER_CONFIG_KEY`].
pub const DOCKER_CONFIG_TYPE: &str = "kubernetes.io/dockerconfigjson";

/// The key of a [`DOCKER_CONFIG_TYPE`] Secret's auth file.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";

/// Keep the `known` top-level fields of `obj`; the names of the others.
fn retain_known(obj: &mut Map<String, Value>, known: &[&str]) -> Vec<String> {
    let mut unknown = Vec::new();
    obj.retain(|k, _| {
        let ok = known.contains(&k.as_str());
        if !ok {
            unknown.push(k.clone());
        }
        ok
    });
    unknown
}

/// Keys of `data` maps: letters, digits, `-`, `_`, `.` (Kubernetes').
fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `obj[section]`, if present: a map of valid keys to strings.
fn string_map<'a>(
    obj: &'a Map<String, Value>,
    section: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    let Some(v) = obj.get(section) else {
        return Ok(None);
    };
    let map = v
        .as_object()
        .ok_or_else(|| format!("{section} must be a map"))?;
    for (k, v) in map {
        if !key_ok(k) {
            return Err(format!(
                "{section} key {k:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        if !v.is_string() {
            return Err(format!("{section}.{k} must be a string"));
        }
    }
    Ok(Some(map))
}

fn check_immutable(obj: &Map<String, Value>) -> Result<(), String> {
    if obj.get("immutable").is_some_and(|v| !v.is_boolean()) {
        return Err("immutable must be true or false".into());
    }
    Ok(())
}

/// A ConfigMap as Kubernetes takes it: `data` string values (keys of
/// letters, digits, `-`, `_`, `.`), `binaryData` base64 values, and
/// `immutable`; other top-level fields are unknown (left out, reported).
pub(super) fn check_config_map(mut body: Value) -> Result<(Value, Vec<String>), String> {
    let obj = body.as_object_mut().ok_or("is not an object")?;
    let unknown = retain_known(
        obj,
        &[
            "apiVersion",
            "kind",
            "metadata",
            "data",
            "binaryData",
            "immutable",
        ],
    );
    string_map(obj, "data")?;
    if let Some(binary) = string_map(obj, "binaryData")? {
        for (k, v) in binary {
            STANDARD
                .decode(v.as_str().unwrap_or_default())
                .map_err(|e| format!("binaryData.{k} is not base64: {e}"))?;
        }
    }
    check_immutable(obj)?;
    Ok((body, unknown))
}

/// A Secret as Kubernetes takes it: `type` (default `Opaque`), `data`
/// base64 values, `stringData` plain values merged into `data` on write
/// (and not kept, as Kubernetes does), `immutable`; at most
/// [`MAX_SECRET_BYTES`] decoded. A [`DOCKER_CONFIG_TYPE`] Secret must hold
/// a JSON auth file with `auths` under [`DOCKER_CONFIG_KEY`].
pub(super) fn check_secret(mut body: Value) -> Result<(Value, Vec<String>), String> {
    let obj = body.as_object_mut().ok_or("is not an object")?;
    let unknown = retain_known(
        obj,
        &[
            "apiVersion",
            "kind",
            "metadata",
            "type",
            "data",
            "stringData",
            "immutable",
        ],
    );
    check_immutable(obj)?;
    let kind = match obj.get("type") {
        None | Some(Value::Null) => "Opaque".to_owned(),
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        Some(_) => return Err("type must be a non-empty string".into()),
    };
    obj.insert("type".into(), Value::from(kind.as_str()));
    let mut data: Map<String, Value> = string_map(obj, "data")?.cloned().unwrap_or_default();
    let mut size = 0usize;
    for (k, v) in &data {
        let bytes = STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("data.{k} is not base64: {e}"))?;
        size += bytes.len();
    }
    if let Some(plain) = string_map(obj, "stringData")? {
        for (k, v) in plain {
            let v = v.as_str().unwrap_or_default();
            if let Some(old) = data.get(k) {
                size -= STANDARD
                    .decode(old.as_str().unwrap_or_default())
                    .map_or(0, |b| b.len());
            }
            size += v.len();
            data.insert(k.clone(), Value::from(STANDARD.encode(v)));
        }
    }
    obj.remove("stringData");
    if size > MAX_SECRET_BYTES {
        return Err(format!(
            "holds {size} bytes, more than the {MAX_SECRET_BYTES} a Secret may"
        ));
    }
    if kind == DOCKER_CONFIG_TYPE {
        docker_config(&data)?;
    }
    obj.insert("data".into(), Value::Object(data));
    Ok((body, unknown))
}

/// The registry auth file of a [`DOCKER_CONFIG_TYPE`] Secret's `data`,
/// decoded: JSON with an `auths` map, as `podman login` writes it.
pub fn docker_config(data: &Map<String, Value>) -> Result<String, String> {
    let encoded = data
        .get(DOCKER_CONFIG_KEY)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a {DOCKER_CONFIG_TYPE} Secret needs data.{DOCKER_CONFIG_KEY}"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| format!("data.{DOCKER_CONFIG_KEY} is not base64: {e}"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("data.{DOCKER_CONFIG_KEY} is not UTF-8"))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("data.{DOCKER_CONFIG_KEY} is not JSON: {e}"))?;
    if !json.get("auths").is_some_and(Value::is_object) {
        return Err(format!(
            "data.{DOCKER_CONFIG_KEY} has no \"auths\" map (write it with `podman login --authfile`)"
        ));
    }
    Ok(text)
}
