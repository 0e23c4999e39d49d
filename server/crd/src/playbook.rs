//! Ansible playbooks run on devices, and the conditions reporting on their runs.
//!
//! Shared by [`EdgeConfig`](crate::EdgeConfig) (a list of playbooks),
//! [`PlaybookExecution`](crate::PlaybookExecution) (one run) and the EdgeDevice
//! status (runs seen on that device).

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An Ansible playbook and how to run it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Playbook {
    /// `ansible-playbook` options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ansible_options: Option<AnsibleOptions>,
    /// The playbook's YAML text (base64 in JSON).
    #[schemars(schema_with = "crate::schema::base64_bytes")]
    pub content: ByteString,
    /// How to run it (e.g. once, or on every boot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_strategy: Option<String>,
    /// `become` settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privilege_escalation_options: Option<PrivilegeEscalationOptions>,
    /// Linux capabilities the run needs or must not have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_privilege_level: Option<RequiredPrivilegeLevel>,
    /// Connection timeout of `ansible-playbook`, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
}

/// `ansible-playbook` options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AnsibleOptions {
    /// Dry run: report what would change without changing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<bool>,
}

/// Ansible privilege escalation (`become`) settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivilegeEscalationOptions {
    /// Whether to escalate at all.
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_: Option<bool>,
    /// The tool used to escalate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub become_method: Option<BecomeMethod>,
    /// The user to become.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
}

/// How Ansible escalates privileges.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BecomeMethod {
    /// `sudo`.
    Sudo,
    /// `su`.
    Su,
}

/// Linux capabilities (numbers from `capabilities(7)`) a playbook run needs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequiredPrivilegeLevel {
    /// Capabilities to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::unformatted_integer_list")]
    pub cap_add: Option<Vec<i64>>,
    /// Capabilities to drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::unformatted_integer_list")]
    pub cap_drop: Option<Vec<i64>>,
}

/// The observed state of playbook runs: a list of conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PlaybookExecutionStatus {
    /// Conditions, latest state last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<PlaybookExecutionCondition>>,
}

/// One condition of a playbook run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookExecutionCondition {
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Human-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Machine-readable reason for the last transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// What the condition is about.
    #[serde(rename = "type")]
    pub type_: String,
}
