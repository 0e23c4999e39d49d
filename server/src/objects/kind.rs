//! The CRD kinds the server stores, and the names the CLI accepts for them
//! (kind, singular, plural and short names, as kubectl does).

use std::fmt;
use std::str::FromStr;

use super::ObjectError;

/// A Flotta resource kind kept in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `EdgeDevice` (`edgedevice`, `edgedevices`, `ed`).
    EdgeDevice,
    /// `EdgeDeviceSet` (`edgedeviceset`, `edgedevicesets`, `eds`).
    EdgeDeviceSet,
    /// `EdgeWorkload` (`edgeworkload`, `edgeworkloads`, `ew`).
    EdgeWorkload,
    /// `EdgeDeviceSignedRequest` (`edgedevicesignedrequest`, `...s`, `edsr`).
    EdgeDeviceSignedRequest,
    /// Kubernetes' core `ConfigMap` (`configmap`, `configmaps`, `cm`), which
    /// EdgeWorkloads reference; sent to devices with the workloads.
    ConfigMap,
    /// Kubernetes' core `Secret` (`secret`, `secrets`): values EdgeWorkloads
    /// reference (env, registry auth), sent to devices with them.
    Secret,
}

impl Kind {
    /// Every kind, in the order `get all` would list them.
    pub const ALL: [Kind; 6] = [
        Kind::EdgeDeviceSignedRequest,
        Kind::EdgeDevice,
        Kind::EdgeDeviceSet,
        Kind::EdgeWorkload,
        Kind::ConfigMap,
        Kind::Secret,
    ];

    /// The `apiVersion` its manifests carry.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::ConfigMap | Kind::Secret => "v1",
            _ => flotta_crd::API_VERSION,
        }
    }

    /// The `kind` field of manifests, e.g. `EdgeDevice`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EdgeDevice => "EdgeDevice",
            Kind::EdgeDeviceSet => "EdgeDeviceSet",
            Kind::EdgeWorkload => "EdgeWorkload",
            Kind::EdgeDeviceSignedRequest => "EdgeDeviceSignedRequest",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }

    /// Lower-case plural, as in `edgedevices` (used in admin API paths).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::EdgeDevice => "edgedevices",
            Kind::EdgeDeviceSet => "edgedevicesets",
            Kind::EdgeWorkload => "edgeworkloads",
            Kind::EdgeDeviceSignedRequest => "edgedevicesignedrequests",
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Kind::EdgeDevice => &["edgedevice", "edgedevices", "ed"],
            Kind::EdgeDeviceSet => &["edgedeviceset", "edgedevicesets", "eds"],
            Kind::EdgeWorkload => &["edgeworkload", "edgeworkloads", "ew"],
            Kind::EdgeDeviceSignedRequest => &[
                "edgedevicesignedrequest",
                "edgedevicesignedrequests",
                "edsr",
            ],
            Kind::ConfigMap => &["configmap", "configmaps", "cm"],
            Kind::Secret => &["secret", "secrets"],
        }
    }
}

impl FromStr for Kind {
    type Err = ObjectError;

    /// Accepts the kind (any case), singular, plural and short names, with or
    /// without the API group suffix (`edgedevices.management.project-flotta.io`).
    fn from_str(s: &str) -> Result<Self, ObjectError> {
        let lower = s.to_ascii_lowercase();
        let name = lower
            .strip_suffix(&format!(".{}", flotta_crd::GROUP))
            .unwrap_or(&lower);
        Kind::ALL
            .into_iter()
            .find(|k| k.names().contains(&name))
            .ok_or_else(|| ObjectError::UnknownKind(s.to_owned()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubectl_style_names() {
        for (name, kind) in [
            ("EdgeDevice", Kind::EdgeDevice),
            ("edgedevices", Kind::EdgeDevice),
            ("ed", Kind::EdgeDevice),
            ("eds", Kind::EdgeDeviceSet),
            ("EdgeDeviceSets", Kind::EdgeDeviceSet),
            ("ew", Kind::EdgeWorkload),
            (
                "edgeworkloads.management.project-flotta.io",
                Kind::EdgeWorkload,
            ),
            ("edsr", Kind::EdgeDeviceSignedRequest),
            ("EdgeDeviceSignedRequest", Kind::EdgeDeviceSignedRequest),
            ("cm", Kind::ConfigMap),
            ("ConfigMaps", Kind::ConfigMap),
            ("secret", Kind::Secret),
            ("Secrets", Kind::Secret),
        ] {
            assert_eq!(name.parse::<Kind>().unwrap(), kind, "{name}");
        }
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
            assert_eq!(kind.plural().parse::<Kind>().unwrap(), kind);
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_name() {
        let err = "pods".parse::<Kind>().unwrap_err();
        assert!(err.to_string().contains("pods"), "{err}");
        assert!("edgedevicez".parse::<Kind>().is_err());
    }
}
