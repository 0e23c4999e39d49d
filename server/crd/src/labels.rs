//! The label keys Flotta puts on and reads from its resources, and the derivation
//! of hardware labels from a device's reported [`Hardware`].
//!
//! Devices get hardware labels when they register, so that workloads can select
//! them by architecture, model or vendor, e.g.
//! `deviceSelector: {matchLabels: {device.cpu-architecture: aarch64}}`.

use std::collections::BTreeMap;

use crate::hardware::Hardware;
use crate::label_syntax::MAX_LABEL_NAME_BYTES;

/// Host name of the device.
pub const HOSTNAME: &str = "device.hostname";
/// CPU architecture, as `uname -m` names it (`x86_64`, `aarch64`, `armv6l`, ...).
pub const CPU_ARCHITECTURE: &str = "device.cpu-architecture";
/// CPU model name.
pub const CPU_MODEL: &str = "device.cpu-model";
/// System manufacturer.
pub const SYSTEM_MANUFACTURER: &str = "device.system-manufacturer";
/// System product name.
pub const SYSTEM_PRODUCT: &str = "device.system-product";
/// System serial number.
pub const SYSTEM_SERIAL: &str = "device.system-serial";

/// On an EdgeDevice: the name of the EdgeDeviceSet whose configuration it uses.
pub const MEMBER_OF: &str = "flotta/member-of";
/// On an EdgeDevice: `"true"` when it was created from an approved
/// EdgeDeviceSignedRequest.
pub const SIGNED_REQUEST: &str = "edgedeviceSignedRequest";

/// Prefix of the labels on an EdgeDevice naming the workloads placed on it
/// (`workload/<edgeworkload name>`); see [`workload_label`].
pub const WORKLOAD_PREFIX: &str = "workload/";
/// Prefix of the labels on an EdgeWorkload that index which device labels its
/// selector mentions (`selector/<device label key>`).
pub const SELECTOR_PREFIX: &str = "selector/";
/// Prefix of the labels on an EdgeDevice naming the EdgeConfigs applied to it.
pub const CONFIG_PREFIX: &str = "config/";
/// Prefix of EdgeWorkload labels that are passed to podman, with the prefix removed.
pub const PODMAN_PREFIX: &str = "podman/";
/// After [`SELECTOR_PREFIX`]: the label indexing a workload by the one device it
/// names in `spec.device`.
pub const SELECTOR_DEVICE_NAME: &str = "devicename";
/// After [`SELECTOR_PREFIX`]: the label marking selectors that can match devices
/// lacking a key (`NotIn`, `DoesNotExist`).
pub const SELECTOR_DOES_NOT_EXIST: &str = "doesnotexist";

/// The label marking `workload` as placed on a device: `workload/<workload>`.
pub fn workload_label(workload: &str) -> String {
    format!("{WORKLOAD_PREFIX}{workload}")
}

/// The hardware labels for a device reporting `hardware`, keyed by
/// [`HOSTNAME`], [`CPU_ARCHITECTURE`], [`CPU_MODEL`], [`SYSTEM_MANUFACTURER`],
/// [`SYSTEM_PRODUCT`] and [`SYSTEM_SERIAL`]. A field that is missing, or has no
/// character usable in a label, gives no label.
pub fn hardware_labels(hardware: &Hardware) -> BTreeMap<String, String> {
    let cpu = hardware.cpu.as_ref();
    let vendor = hardware.system_vendor.as_ref();
    let sources = [
        (HOSTNAME, hardware.hostname.as_deref()),
        (
            CPU_ARCHITECTURE,
            cpu.and_then(|c| c.architecture.as_deref()),
        ),
        (CPU_MODEL, cpu.and_then(|c| c.model_name.as_deref())),
        (
            SYSTEM_MANUFACTURER,
            vendor.and_then(|v| v.manufacturer.as_deref()),
        ),
        (
            SYSTEM_PRODUCT,
            vendor.and_then(|v| v.product_name.as_deref()),
        ),
        (
            SYSTEM_SERIAL,
            vendor.and_then(|v| v.serial_number.as_deref()),
        ),
    ];
    sources
        .into_iter()
        .filter_map(|(key, raw)| Some((key.to_owned(), normalize_label_value(raw?)?)))
        .collect()
}

/// Turns free text (a CPU model, a vendor name) into a valid label value the way
/// Flotta does: lowercase it and keep only `a-z`, `0-9`, `-`, `_` and `.`,
/// trimmed to start and end with an alphanumeric.
///
/// `"Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"` becomes
/// `"intelrcoretmi7-8650ucpu1.90ghz"`. Unlike Flotta, the result is cut to the
/// 63 bytes a label value may hold (then trimmed again), so it is always valid.
/// Returns `None` when no alphanumeric character is left.
pub fn normalize_label_value(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        .collect();
    let is_alnum = |c: char| c.is_ascii_alphanumeric();
    let trimmed = kept.trim_matches(|c: char| !is_alnum(c));
    // Everything left is ASCII, so any byte index is a character boundary.
    let cut = &trimmed[..trimmed.len().min(MAX_LABEL_NAME_BYTES)];
    let value = cut.trim_end_matches(|c: char| !is_alnum(c));
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{Cpu, SystemVendor};
    use crate::label_syntax::{validate_label_key, validate_label_value};
    use proptest::prelude::*;

    #[test]
    fn normalizes_like_flotta() {
        let cases = [
            (
                "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz",
                "intelrcoretmi7-8650ucpu1.90ghz",
            ),
            ("LENOVO", "lenovo"),
            ("20L8S2N80P", "20l8s2n80p"),
            ("localhost.localdomain", "localhost.localdomain"),
            (
                "  Raspberry Pi 4 Model B Rev 1.4\n",
                "raspberrypi4modelbrev1.4",
            ),
            ("--x86_64--", "x86_64"),
            ("Cortex-A72", "cortex-a72"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_label_value(raw).as_deref(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn text_without_alphanumerics_gives_no_value() {
        for raw in ["", "   ", "-_.", "(®)", "日本"] {
            assert_eq!(normalize_label_value(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn long_text_is_cut_to_a_valid_value() {
        let raw = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let value = normalize_label_value(&raw).expect("has alphanumerics");
        assert_eq!(
            value,
            "a".repeat(62),
            "cut at 63 bytes, then the dangling '-' trimmed"
        );
    }

    #[test]
    fn hardware_labels_cover_reported_fields_only() {
        let hardware = Hardware {
            hostname: Some("Edge-01".into()),
            cpu: Some(Cpu {
                architecture: Some("aarch64".into()),
                model_name: Some("Cortex-A72".into()),
                ..Cpu::default()
            }),
            system_vendor: Some(SystemVendor {
                manufacturer: Some("Raspberry Pi Foundation".into()),
                serial_number: Some("(none)".into()),
                ..SystemVendor::default()
            }),
            ..Hardware::default()
        };
        let labels = hardware_labels(&hardware);
        let want: BTreeMap<String, String> = [
            (HOSTNAME, "edge-01"),
            (CPU_ARCHITECTURE, "aarch64"),
            (CPU_MODEL, "cortex-a72"),
            (SYSTEM_MANUFACTURER, "raspberrypifoundation"),
            (SYSTEM_SERIAL, "none"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(labels, want);
        assert!(hardware_labels(&Hardware::default()).is_empty());
    }

    #[test]
    fn label_keys_are_valid() {
        for key in [
            HOSTNAME,
            CPU_ARCHITECTURE,
            CPU_MODEL,
            SYSTEM_MANUFACTURER,
            SYSTEM_PRODUCT,
            SYSTEM_SERIAL,
            MEMBER_OF,
            SIGNED_REQUEST,
            &workload_label("my-app"),
            &format!("{SELECTOR_PREFIX}{SELECTOR_DEVICE_NAME}"),
        ] {
            assert_eq!(validate_label_key(key), Ok(()), "{key}");
        }
    }

    proptest! {
        #[test]
        fn normalized_values_are_valid_and_stable(raw in "\\PC{0,100}") {
            if let Some(value) = normalize_label_value(&raw) {
                prop_assert_eq!(validate_label_value(&value), Ok(()));
                prop_assert!(!value.is_empty());
                prop_assert_eq!(normalize_label_value(&value), Some(value.clone()));
            } else {
                prop_assert!(!raw.chars().any(|c| c.is_ascii_alphanumeric()));
            }
        }
    }
}
