//! Rust types for Project Flotta's custom resources
//! (`management.project-flotta.io/v1alpha1`).
//!
//! The types serialise to exactly the field names of Flotta's Go operator, so
//! manifests written for Flotta apply unchanged, and the CustomResourceDefinitions
//! generated from them ([`all_crds`], [`crds_yaml`]) are schema-compatible with
//! Flotta's own (checked by `tests/schema_compat.rs` against the reference CRDs).
//!
//! Besides the resources themselves the crate holds the helpers a controller needs:
//! label-selector evaluation ([`selector_matches`]) and the label keys Flotta puts on
//! devices ([`labels`]).
#![forbid(unsafe_code)]

pub mod device;
pub mod device_config;
pub mod device_set;
pub mod edge_config;
pub mod hardware;
pub mod label_syntax;
pub mod labels;
mod manifest;
pub mod name_ref;
pub mod playbook;
pub mod playbook_execution;
mod schema;
pub mod selector;
pub mod signed_request;
pub mod workload;

pub use device::{EdgeDevice, EdgeDeviceSpec, EdgeDeviceStatus};
pub use device_set::{EdgeDeviceSet, EdgeDeviceSetSpec, EdgeDeviceSetStatus};
pub use edge_config::{EdgeConfig, EdgeConfigSpec, EdgeConfigStatus};
pub use manifest::{all_crds, crds_yaml};
pub use name_ref::NameRef;
pub use playbook_execution::{PlaybookExecution, PlaybookExecutionSpec};
pub use selector::{SelectorError, selector_matches};
pub use signed_request::{
    EdgeDeviceSignedRequest, EdgeDeviceSignedRequestSpec, EdgeDeviceSignedRequestStatus,
};
pub use workload::{EdgeWorkload, EdgeWorkloadSpec, EdgeWorkloadStatus};

/// The API group of every Flotta resource.
pub const GROUP: &str = "management.project-flotta.io";

/// The (only) API version of Flotta's resources.
pub const VERSION: &str = "v1alpha1";

/// `apiVersion` as written in manifests: `management.project-flotta.io/v1alpha1`.
pub const API_VERSION: &str = "management.project-flotta.io/v1alpha1";

// Re-exported so that users of the types need not pin matching versions themselves.
pub use k8s_openapi;
pub use kube;
