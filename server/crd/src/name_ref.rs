//! [`NameRef`]: a reference, by name, to another object in the same namespace.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Names a ConfigMap or Secret in the namespace of the referring resource.
///
/// Flotta uses it for syslog configuration, metric allow-lists and image-registry
/// pull secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NameRef {
    /// Name of the referenced object.
    pub name: String,
}

impl NameRef {
    /// A reference to the object called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}
