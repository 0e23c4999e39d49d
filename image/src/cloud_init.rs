//! cloud-init flavour: merging our first-boot command into the image's `user-data`
//! (`#cloud-config` YAML, NoCloud seed on the boot partition). The user's keys stay; our
//! `runcmd` entry (recognised by `flotta-install.sh`, or an older writer's `flotta/install.sh`,
//! in it) is replaced, never duplicated.

use serde_norway::{Mapping, Value};

use crate::error::{ImageError, Result};

/// Mark our `runcmd` entry: this writer's installer, and the one older versions wrote.
const MARKS: [&str; 2] = ["/flotta-install.sh", "/flotta/install.sh"];

fn is_ours(v: &Value) -> bool {
    match v {
        Value::String(s) => MARKS.iter().any(|m| s.contains(m)),
        Value::Sequence(items) => items.iter().any(is_ours),
        _ => false,
    }
}

/// The merged `user-data`: `existing` (may be empty or comments only) plus a `runcmd` entry
/// running `install_sh` (its path on the board), and `hostname` when given.
pub fn merge_user_data(existing: &str, install_sh: &str, hostname: Option<&str>) -> Result<String> {
    let parsed: Value = serde_norway::from_str(existing).map_err(|e| {
        ImageError::Unrecognised(format!("user-data on the boot partition is not YAML: {e}"))
    })?;
    let mut map = match parsed {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        _ => {
            return Err(ImageError::Unrecognised(
                "user-data on the boot partition is not a #cloud-config mapping".into(),
            ));
        }
    };
    // Edited where it stands: the keys keep their order, so a second run is a fixed point.
    let key = Value::String("runcmd".into());
    if !map.get(&key).is_some_and(Value::is_sequence) {
        if !map.get(&key).is_none_or(Value::is_null) {
            return Err(ImageError::Unrecognised(
                "user-data: `runcmd` is not a list".into(),
            ));
        }
        map.insert(key.clone(), Value::Sequence(Vec::new()));
    }
    if let Some(Value::Sequence(runcmd)) = map.get_mut(&key) {
        runcmd.retain(|v| !is_ours(v));
        runcmd.push(Value::Sequence(vec![
            Value::String("sh".into()),
            Value::String(install_sh.into()),
        ]));
    }
    if let Some(h) = hostname {
        map.insert(Value::String("hostname".into()), Value::String(h.into()));
    }
    let yaml = serde_norway::to_string(&Value::Mapping(map))
        .map_err(|e| ImageError::Invalid(format!("rendering user-data: {e}")))?;
    Ok(format!("#cloud-config\n{yaml}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGER: &str = "#cloud-config\n# written by a person\nusers:\n- name: pi\n  groups: sudo\nruncmd:\n- [echo, hello]\n";

    #[test]
    fn keeps_user_keys_adds_one_runcmd_and_is_a_fixed_point() {
        let once =
            merge_user_data(IMAGER, "/boot/firmware/flotta-install.sh", Some("node-1")).unwrap();
        let twice =
            merge_user_data(&once, "/boot/firmware/flotta-install.sh", Some("node-1")).unwrap();
        assert_eq!(once, twice);
        assert!(once.starts_with("#cloud-config\n"));
        let v: Value = serde_norway::from_str(&once).unwrap();
        assert_eq!(v["users"][0]["name"], Value::String("pi".into()));
        assert_eq!(v["hostname"], Value::String("node-1".into()));
        let runcmd = v["runcmd"].as_sequence().unwrap();
        assert_eq!(runcmd.len(), 2, "{once}");
        assert_eq!(
            runcmd[1][1],
            Value::String("/boot/firmware/flotta-install.sh".into())
        );
    }

    #[test]
    fn an_older_writers_entry_is_replaced() {
        let old = merge_user_data(IMAGER, "/boot/firmware/flotta/install.sh", None).unwrap();
        let new = merge_user_data(&old, "/boot/firmware/flotta-install.sh", None).unwrap();
        assert_eq!(
            new,
            merge_user_data(IMAGER, "/boot/firmware/flotta-install.sh", None).unwrap()
        );
        assert!(!new.contains("flotta/install.sh"), "{new}");
    }

    #[test]
    fn empty_seed_and_bad_shapes() {
        let out = merge_user_data("#cloud-config\n", "/b/flotta-install.sh", None).unwrap();
        assert!(out.contains("runcmd") && !out.contains("hostname"), "{out}");
        assert!(merge_user_data("- a\n- b\n", "/x", None).is_err());
        assert!(merge_user_data("runcmd: 3\n", "/x", None).is_err());
        assert!(merge_user_data("a: [\n", "/x", None).is_err());
    }
}
