//! What the server does in a cluster (`objects = "kubernetes"`), in RBAC's
//! words, in one place: [`ACCESS`] (resource rules) and [`DISCOVERY`]
//! (non-resource URLs). `deploy/kubernetes/rbac.yaml` grants exactly this
//! (`server/tests/deploy_manifests.rs` compares them), and every request
//! the server makes outside the watches is checked against it first
//! ([`permits`], in `api.rs`): a request the list does not name fails in
//! the server with a clear error instead of a 403 from a real cluster.
//!
//! - Flotta's four kinds are watched cluster-wide (list, watch: EdgeDevices
//!   in every namespace, hence a ClusterRole), created and merge-patched by
//!   the controller and the admin API (finalizers are part of the patch:
//!   metadata, no subresource), read once after a conflicting create (get)
//!   and deleted (decommissioning, the admin API's delete).
//! - Statuses are written by server-side apply on the status subresource
//!   (patch on `<resource>/status`) of the three kinds the controller keeps
//!   a status of; EdgeDeviceSets get none.
//! - ConfigMaps and Secrets that workloads reference are watched only: the
//!   server never writes them (`flotta-server apply` of one in this mode is
//!   refused: use `kubectl`), and never reads one outside the watch.
//! - Discovery at start reads two API group documents (which kinds the
//!   cluster serves); Kubernetes' default `system:discovery` role grants
//!   them to every authenticated client already, the ClusterRole names
//!   them anyway so that it is complete on its own.
//!
//! Leader election is a PostgreSQL advisory lock: no Leases, no Events.

use crate::objects::Kind;

/// The API group of Flotta's CRDs.
pub const FLOTTA_GROUP: &str = "management.project-flotta.io";

/// A request verb, as RBAC spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    /// Read one object.
    Get,
    /// List a kind (the watches' first list and their relists).
    List,
    /// Watch a kind.
    Watch,
    /// Create an object.
    Create,
    /// Merge-patch an object, or server-side apply its status.
    Patch,
    /// Delete an object.
    Delete,
}

impl Verb {
    /// RBAC's name of the verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// One RBAC rule: these verbs on these resources of an API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The API group (`""`: core).
    pub group: &'static str,
    /// Resource names (plurals; `<plural>/status` for the status subresource).
    pub resources: &'static [&'static str],
    /// What is done to them.
    pub verbs: &'static [Verb],
}

/// Everything the server does to resources in a cluster (see the module docs).
pub const ACCESS: &[Access] = &[
    Access {
        group: FLOTTA_GROUP,
        resources: &[
            "edgedevices",
            "edgedevicesets",
            "edgeworkloads",
            "edgedevicesignedrequest",
        ],
        verbs: &[
            Verb::Get,
            Verb::List,
            Verb::Watch,
            Verb::Create,
            Verb::Patch,
            Verb::Delete,
        ],
    },
    Access {
        group: FLOTTA_GROUP,
        resources: &[
            "edgedevices/status",
            "edgeworkloads/status",
            "edgedevicesignedrequest/status",
        ],
        verbs: &[Verb::Patch],
    },
    Access {
        group: "",
        resources: &["configmaps", "secrets"],
        verbs: &[Verb::List, Verb::Watch],
    },
];

/// The discovery documents read at start (GET, non-resource URLs).
pub const DISCOVERY: &[&str] = &["/api/v1", "/apis/management.project-flotta.io/v1alpha1"];

/// The API group of `kind`.
pub fn group(kind: Kind) -> &'static str {
    if kind.api_version() == "v1" {
        ""
    } else {
        FLOTTA_GROUP
    }
}

/// The RBAC resource name of `kind`, or of its status subresource.
pub fn resource(kind: Kind, status: bool) -> String {
    let plural = super::kind_plural(kind);
    if status {
        format!("{plural}/status")
    } else {
        plural.to_owned()
    }
}

/// Whether [`ACCESS`] lets the server `verb` `kind` (its status
/// subresource when `status`).
pub fn permits(kind: Kind, status: bool, verb: Verb) -> bool {
    let (group, resource) = (group(kind), resource(kind, status));
    ACCESS.iter().any(|a| {
        a.group == group && a.resources.contains(&resource.as_str()) && a.verbs.contains(&verb)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_watched_and_only_flotta_kinds_are_written() {
        for kind in Kind::ALL {
            assert!(permits(kind, false, Verb::List) && permits(kind, false, Verb::Watch));
            let flotta = group(kind) == FLOTTA_GROUP;
            for verb in [Verb::Get, Verb::Create, Verb::Patch, Verb::Delete] {
                assert_eq!(permits(kind, false, verb), flotta, "{kind} {verb:?}");
            }
        }
        for kind in [
            Kind::EdgeDevice,
            Kind::EdgeWorkload,
            Kind::EdgeDeviceSignedRequest,
        ] {
            assert!(permits(kind, true, Verb::Patch), "{kind}");
            assert!(!permits(kind, true, Verb::Get), "{kind}");
        }
        assert!(!permits(Kind::EdgeDeviceSet, true, Verb::Patch));
        assert!(!permits(Kind::Secret, true, Verb::Patch));
    }

    #[test]
    fn discovery_names_the_documents_connect_reads() {
        assert_eq!(DISCOVERY[1], format!("/apis/{}", flotta_crd::API_VERSION));
        assert!(flotta_crd::API_VERSION.starts_with(FLOTTA_GROUP));
    }

    #[test]
    fn resources_are_the_api_resources_plurals() {
        for kind in Kind::ALL {
            let r = super::super::api_resource(kind);
            assert_eq!(resource(kind, false), r.plural);
            assert_eq!(group(kind), r.group);
        }
    }
}
