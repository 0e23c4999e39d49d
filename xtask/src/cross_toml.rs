//! Keeps `cross/Cross.toml` (for cross-rs users with Docker) in step with the targets table.
//!
//! cross-rs is never run here; these tests only check that its configuration names the same
//! triples `dist` builds and builds the ARMv6 one the same way (build-std, same CPU).

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::targets::{TARGETS, Toolchain};
    use crate::toolchain::cargo_suffix;

    fn cross_toml() -> toml::Table {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cross/Cross.toml");
        let text = std::fs::read_to_string(path).unwrap();
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn every_dist_target_is_configured_and_nothing_else() {
        let cfg = cross_toml();
        let targets = cfg["target"].as_table().unwrap();
        let mut configured: Vec<&str> = targets.keys().map(String::as_str).collect();
        let mut ours: Vec<&str> = TARGETS.iter().map(|t| t.triple).collect();
        configured.sort_unstable();
        ours.sort_unstable();
        assert_eq!(configured, ours);
    }

    #[test]
    fn build_std_targets_use_build_std_and_the_same_cpu() {
        let cfg = cross_toml();
        for t in TARGETS
            .iter()
            .filter(|t| t.toolchain == Toolchain::NightlyBuildStd)
        {
            let section = cfg["target"][t.triple].as_table().unwrap();
            assert_eq!(
                section.get("build-std").and_then(toml::Value::as_bool),
                Some(true)
            );
            let passthrough: Vec<&str> = section["env"]["passthrough"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(toml::Value::as_str)
                .collect();
            let cpu = t.target_cpu.unwrap();
            let want = format!(
                "CARGO_TARGET_{}_RUSTFLAGS=-C target-cpu={cpu}",
                cargo_suffix(t.triple)
            );
            assert!(
                passthrough.contains(&want.as_str()),
                "{passthrough:?} lacks {want}"
            );
        }
    }
}
