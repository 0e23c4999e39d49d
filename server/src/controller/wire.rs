//! Translating CRD objects (camelCase, Kubernetes style) into the JSON of
//! Flotta's Edge API (`device-configuration`, `workload`: snake_case, a few
//! renamed keys), and device-reported hardware back into the CRD shape.

use serde_json::{Map, Value};

/// `commitID` → `commit_id`, `hostedObjectsURL` → `hosted_objects_url`:
/// a run of capitals is one word.
pub fn snake_case(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `model_name` → `modelName`.
pub fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Where Flotta's wire names differ from the snake_case of the CRD names.
fn wire_key(key: &str) -> String {
    match key {
        "dataTransfer" => "data-transfer".into(),
        "receiverConfiguration" => "receiver".into(),
        "maxMiB" => "max_mib".into(),
        "folder" => "directory".into(),
        other => snake_case(other),
    }
}

/// Rename every object key of `v` with `f`, recursively, except inside the
/// objects whose (already renamed) key is listed in `opaque` (user data such
/// as label maps keep their keys, their values are still converted).
fn rename_keys(v: &Value, f: &dyn Fn(&str) -> String, opaque: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = f(k);
                    let inner = if opaque.contains(&key.as_str()) {
                        match v {
                            Value::Object(m) => Value::Object(
                                m.iter()
                                    .map(|(k, v)| (k.clone(), rename_keys(v, f, opaque)))
                                    .collect(),
                            ),
                            other => rename_keys(other, f, opaque),
                        }
                    } else {
                        rename_keys(v, f, opaque)
                    };
                    (key, inner)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| rename_keys(v, f, opaque)).collect()),
        other => other.clone(),
    }
}

/// A CRD configuration block (heartbeat, metrics, ...) as Flotta's API spells it.
pub fn to_wire(v: &Value) -> Value {
    rename_keys(v, &wire_key, &["containers"])
}

/// One configuration section: the CRD key, and Flotta's `device-configuration` key.
pub const SECTIONS: [(&str, &str); 6] = [
    ("heartbeat", "heartbeat"),
    ("storage", "storage"),
    ("metrics", "metrics"),
    ("osInformation", "os"),
    ("logCollection", "log-collection"),
    ("mounts", "mounts"),
];

/// Flotta's `device-configuration`: each section from the set's spec when
/// the set has it, else from the device's own spec. A heartbeat period is
/// always present (`default_period_seconds` when nobody set one).
pub fn device_configuration(
    device_spec: &Value,
    set_spec: Option<&Value>,
    default_period_seconds: u64,
) -> Value {
    let mut out = Map::new();
    for (crd, wire) in SECTIONS {
        let from_set = set_spec.and_then(|s| s.get(crd)).filter(|v| !v.is_null());
        let chosen = from_set.or_else(|| device_spec.get(crd).filter(|v| !v.is_null()));
        if let Some(v) = chosen {
            // Log-collection target names are user data: keep them as written.
            let converted = if crd == "logCollection" {
                match v {
                    Value::Object(m) => {
                        Value::Object(m.iter().map(|(k, v)| (k.clone(), to_wire(v))).collect())
                    }
                    other => to_wire(other),
                }
            } else {
                to_wire(v)
            };
            out.insert(wire.into(), converted);
        }
    }
    let heartbeat = out
        .entry("heartbeat")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(hb) = heartbeat.as_object_mut() {
        hb.entry("period_seconds")
            .or_insert_with(|| Value::from(default_period_seconds));
    }
    Value::Object(out)
}

/// Heartbeat period of a device nobody configured, unless the server's
/// `default_heartbeat_period_seconds` says otherwise.
pub const DEFAULT_HEARTBEAT_PERIOD_SECONDS: u64 = 60;

/// The heartbeat period a `device-configuration` asks for (`default_period_seconds` if none).
pub fn heartbeat_period_seconds(configuration: &Value, default_period_seconds: u64) -> u64 {
    configuration
        .pointer("/heartbeat/period_seconds")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .unwrap_or(default_period_seconds)
}

/// Flotta's `workload` for an EdgeWorkload: the pod spec as YAML in
/// `specification`, `podman/` labels with the prefix removed, data paths,
/// log-collection target and metrics settings.
pub fn workload(object: &Value) -> Value {
    let mut out = Map::new();
    let meta = object.get("metadata");
    let spec = object.get("spec");
    for key in ["name", "namespace"] {
        if let Some(v) = meta.and_then(|m| m.get(key)) {
            out.insert(key.into(), v.clone());
        }
    }
    let podman: Map<String, Value> = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix(flotta_crd::labels::PODMAN_PREFIX)
                .map(|k| (k.to_owned(), v.clone()))
        })
        .collect();
    if !podman.is_empty() {
        out.insert("labels".into(), Value::Object(podman));
    }
    if let Some(a) = meta.and_then(|m| m.get("annotations")) {
        out.insert("annotations".into(), a.clone());
    }
    if let Some(pod_spec) = spec.and_then(|s| s.pointer("/pod/spec")) {
        let yaml = serde_norway::to_string(pod_spec).unwrap_or_default();
        out.insert("specification".into(), Value::from(yaml));
    }
    if let Some(d) = spec.and_then(|s| s.get("data")) {
        out.insert("data".into(), d.clone());
    }
    if let Some(l) = spec.and_then(|s| s.get("logCollection")) {
        out.insert("log_collection".into(), l.clone());
    }
    if let Some(m) = spec.and_then(|s| s.get("metrics")) {
        out.insert("metrics".into(), to_wire(m));
    }
    Value::Object(out)
}

/// Hardware information as a device reports it (Flotta `hardware-info`,
/// snake_case) in the CRD's shape (camelCase). Lists the CRD requires but
/// the device left out count as empty; when the report still does not fit
/// the CRD type, only the fields hardware labels come from are kept.
pub fn hardware_to_crd(reported: &Value) -> Option<flotta_crd::hardware::Hardware> {
    let mut v = rename_keys(reported, &camel_case, &[]);
    let obj = v.as_object_mut()?;
    for key in ["disks", "gpus", "interfaces"] {
        let entry = obj.entry(key).or_insert_with(|| Value::Array(vec![]));
        if entry.is_null() {
            *entry = Value::Array(vec![]);
        }
    }
    if let Some(cpu) = obj.get_mut("cpu").and_then(Value::as_object_mut) {
        cpu.entry("flags").or_insert_with(|| Value::Array(vec![]));
    }
    serde_json::from_value(v.clone())
        .ok()
        .or_else(|| Some(label_fields(&v)))
}

/// Only the fields hardware labels are made of.
fn label_fields(v: &Value) -> flotta_crd::hardware::Hardware {
    use flotta_crd::hardware::{Cpu, Hardware, SystemVendor};
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    Hardware {
        hostname: text("/hostname"),
        cpu: Some(Cpu {
            architecture: text("/cpu/architecture"),
            model_name: text("/cpu/modelName"),
            ..Cpu::default()
        }),
        system_vendor: Some(SystemVendor {
            manufacturer: text("/systemVendor/manufacturer"),
            product_name: text("/systemVendor/productName"),
            serial_number: text("/systemVendor/serialNumber"),
            ..SystemVendor::default()
        }),
        ..Hardware::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_conversions() {
        for (camel, snake) in [
            ("periodSeconds", "period_seconds"),
            ("commitID", "commit_id"),
            ("hostedObjectsURL", "hosted_objects_url"),
            ("createOBC", "create_obc"),
            ("caSecretName", "ca_secret_name"),
            ("include", "include"),
        ] {
            assert_eq!(snake_case(camel), snake);
        }
        assert_eq!(camel_case("model_name"), "modelName");
        assert_eq!(camel_case("hostname"), "hostname");
    }

    #[test]
    fn sections_are_renamed_like_flotta() {
        let device = json!({
            "heartbeat": {"periodSeconds": 30, "hardwareProfile": {"include": true}},
            "osInformation": {"commitID": "abc", "automaticallyUpgrade": true},
            "metrics": {"retention": {"maxMiB": 200}, "dataTransfer": {"disabled": true}},
            "mounts": [{"device": "/dev/sdb1", "folder": "/mnt", "type": "ext4"}],
            "logCollection": {"Central-Log": {"bufferSize": 12}}
        });
        let c = device_configuration(&device, None, 60);
        assert_eq!(
            c,
            json!({
                "heartbeat": {"period_seconds": 30, "hardware_profile": {"include": true}},
                "os": {"commit_id": "abc", "automatically_upgrade": true},
                "metrics": {"retention": {"max_mib": 200}, "data-transfer": {"disabled": true}},
                "mounts": [{"device": "/dev/sdb1", "directory": "/mnt", "type": "ext4"}],
                "log-collection": {"Central-Log": {"buffer_size": 12}}
            })
        );
        assert_eq!(heartbeat_period_seconds(&c, 60), 30);
        let empty = device_configuration(&json!({}), None, 60);
        assert_eq!(empty, json!({"heartbeat": {"period_seconds": 60}}));
    }

    #[test]
    fn reported_hardware_fits_the_crd() {
        let hw = hardware_to_crd(&json!({
            "hostname": "edge-1",
            "cpu": {"architecture": "aarch64", "model_name": "Cortex-A72"},
            "system_vendor": {"manufacturer": "Pi"}
        }))
        .expect("fits");
        assert_eq!(hw.hostname.as_deref(), Some("edge-1"));
        let cpu = hw.cpu.expect("cpu");
        assert_eq!(cpu.model_name.as_deref(), Some("Cortex-A72"));
        assert!(hardware_to_crd(&json!("not an object")).is_none());
        // A report that does not fit the CRD still gives the label fields.
        let odd = hardware_to_crd(
            &json!({"hostname": "h", "disks": "none", "cpu": {"architecture": "x86_64"}}),
        )
        .expect("label fields");
        assert_eq!(odd.hostname.as_deref(), Some("h"));
        assert_eq!(
            odd.cpu.and_then(|c| c.architecture).as_deref(),
            Some("x86_64")
        );
    }
}
