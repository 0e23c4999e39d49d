//! Fixtures shared by the integration tests: the reference CRDs, our CRDs as
//! JSON, the example manifests, and a structural validator of objects against
//! a CRD's `openAPIV3Schema`.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

pub mod validate;

use std::path::PathBuf;

use flotta_crd::all_crds;
use serde_json::Value;

/// Directory of Flotta's reference CRDs: `FLOTTA_REFERENCE_CRDS` (to compare
/// against another Flotta release), else the copy this repository carries in
/// `tests/fixtures/flotta-crds` (origin and licence in its README).
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("FLOTTA_REFERENCE_CRDS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flotta-crds"),
    }
}

/// `(file name, parsed YAML)` of every `*.yaml` in `dir`, sorted by name.
fn yaml_files(dir: PathBuf) -> Vec<(String, Value)> {
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {} ({err})", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable YAML file");
            let value = serde_norway::from_str(&text)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, value)
        })
        .collect()
}

/// Flotta's reference CRDs, as JSON values. Panics with a hint when the
/// reference tree is missing: these tests must not pass vacuously.
pub fn reference_crds() -> Vec<Value> {
    let dir = reference_dir();
    assert!(
        dir.is_dir(),
        "reference CRDs not found in {}; set FLOTTA_REFERENCE_CRDS",
        dir.display()
    );
    yaml_files(dir).into_iter().map(|(_, crd)| crd).collect()
}

/// The reference CRD for `kind`.
pub fn reference_crd(kind: &str) -> Value {
    reference_crds()
        .into_iter()
        .find(|crd| crd["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no reference CRD for kind {kind}"))
}

/// Our CRD for `kind`, as JSON.
pub fn our_crd(kind: &str) -> Value {
    let crd = all_crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of ours for kind {kind}"));
    serde_json::to_value(crd).expect("CRD serialises")
}

/// The `openAPIV3Schema` of a CRD's first (only) version.
pub fn root_schema(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// The example manifests in `examples/`, as `(file name, manifest)`.
pub fn examples() -> Vec<(String, Value)> {
    let examples = yaml_files(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples"));
    assert!(!examples.is_empty(), "no example manifests found");
    examples
}
