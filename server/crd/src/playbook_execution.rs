//! [`PlaybookExecution`]: one run of an Ansible playbook on a device.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::playbook::{Playbook, PlaybookExecutionStatus};

/// The playbook to run and the attempt number.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "management.project-flotta.io",
    version = "v1alpha1",
    kind = "PlaybookExecution",
    plural = "playbookexecutions",
    singular = "playbookexecution",
    namespaced,
    status = "PlaybookExecutionStatus",
    derive = "PartialEq",
    doc = "One run of an Ansible playbook on an edge device."
)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookExecutionSpec {
    /// How many times the run has been attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::unformatted_non_negative_integer")]
    pub execution_attempt: Option<u64>,
    /// The playbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<Playbook>,
}
