//! [`EdgeConfig`]: Ansible playbooks to run on edge devices.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::playbook::{Playbook, PlaybookExecutionStatus};

/// Desired state of an edge configuration.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "management.project-flotta.io",
    version = "v1alpha1",
    kind = "EdgeConfig",
    plural = "edgeconfigs",
    singular = "edgeconfig",
    namespaced,
    status = "EdgeConfigStatus",
    derive = "PartialEq",
    doc = "Ansible playbooks to run on edge devices."
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeConfigSpec {
    /// The playbooks and the user running them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_playbook: Option<EdgePlaybookSpec>,
}

/// Playbooks, highest priority first, and the user running them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EdgePlaybookSpec {
    /// The playbooks; at least one when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub playbooks: Option<Vec<Playbook>>,
    /// User that runs them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Observed state of an edge configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeConfigStatus {
    /// Conditions of the playbook runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_playbook_status: Option<PlaybookExecutionStatus>,
}
