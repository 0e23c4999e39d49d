//! Workload placement: which EdgeWorkloads of a namespace run on a device,
//! by name (`spec.device`) or by label selector (`spec.deviceSelector`).

use std::collections::BTreeMap;

use flotta_crd::kube::core::{Selector, SelectorExt};
use serde_json::Value;

use super::wire;
use crate::store::StoredObject;

/// An EdgeWorkload prepared for matching against many devices.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Workload name.
    pub name: String,
    /// `spec.device`.
    pub device: Option<String>,
    /// `spec.deviceSelector`, compiled.
    pub selector: Option<Selector>,
    /// The workload as Flotta's `workload` JSON.
    pub wire: Value,
    /// The `secrets` entries of the device configuration it needs.
    pub secrets: Vec<Value>,
}

/// Prepare the stored workloads of one namespace, each with the
/// `configmaps` and `secrets` (of the same namespace) it references. A workload whose
/// selector does not compile keeps only its `device` (the object layer
/// refuses such selectors on write, so this only guards against older
/// data).
pub fn candidates(
    workloads: &[StoredObject],
    configmaps: &[StoredObject],
    secrets: &[StoredObject],
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = workloads
        .iter()
        .filter_map(|o| {
            let wl: flotta_crd::EdgeWorkload = serde_json::from_value(o.body.clone()).ok()?;
            let selector = wl
                .spec
                .device_selector
                .as_ref()
                .and_then(|s| flotta_crd::selector::compile_selector(s).ok());
            let mut wire = wire::workload(&o.body);
            super::configmaps::attach(&mut wire, &o.body, configmaps);
            let secrets = super::secrets::attach(&mut wire, &o.body, secrets);
            Some(Candidate {
                name: o.name.clone(),
                device: wl.spec.device.clone(),
                selector,
                wire,
                secrets,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The candidates placed on the device named `device` with `labels`, by name.
pub fn placed<'a>(
    device: &str,
    labels: &BTreeMap<String, String>,
    candidates: &'a [Candidate],
) -> Vec<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| {
            c.device.as_deref() == Some(device)
                || c.selector.as_ref().is_some_and(|s| s.matches(labels))
        })
        .collect()
}
