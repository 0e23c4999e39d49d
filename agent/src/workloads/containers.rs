//! What podman says about the containers of this agent's pods:
//! `podman ps --all --pod --format json --filter label=<managed>`
//! decoded into [`ObservedContainer`]s, for workload phases and restarts.
//! The bytes come from another program: checked against a size limit
//! before decoding, unknown fields ignored, missing ones defaulted, never
//! trusted to be well formed (`tests` below; fuzzed by `agent/fuzz`
//! `podman_containers`).
//!
//! Measured with podman 4.3.1 (`PODMAN-4.3.md`, section 4): an array of
//! `{"Names": ["wl1-app"], "State": "running", "ExitCode": 0, "Exited":
//! false, "StartedAt": 1796197067, "IsInfra": false, "PodName": "wl1",
//! "Labels": {..}}`; `PodName` only with `--pod`; infra containers carry
//! no labels, so the label filter leaves them out (they are skipped here
//! too, whatever the filter).

use serde::Deserialize;

/// The most output taken from `podman ps`.
pub const MAX_PS_BYTES: usize = 4 << 20;

/// One app container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Its pod's name (the workload's).
    pub pod: String,
    /// Its name (`<pod>-<container>`).
    pub name: String,
    /// Podman's state word: `created`, `running`, `exited`, `stopped`,
    /// `paused`, ...
    pub state: String,
    /// The exit code of its last run (0 while it runs).
    pub exit_code: i32,
    /// Unix seconds its current or last run started (0: never).
    pub started_at: i64,
}

impl ObservedContainer {
    /// It runs (or is paused: still there, not crashed).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused")
    }

    /// It stopped with an error.
    pub fn has_crashed(&self) -> bool {
        !self.is_running() && self.state != "created" && self.exit_code != 0
    }
}

/// Why `podman ps` output was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    /// Longer than [`MAX_PS_BYTES`].
    #[error("podman ps printed {0} bytes, more than {MAX_PS_BYTES}")]
    TooLarge(usize),
    /// Not the JSON podman prints.
    #[error("podman ps printed something else than its JSON: {0}")]
    Malformed(String),
}

impl ContainersError {
    /// Whether asking podman again may help.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

#[derive(Deserialize)]
struct PsContainer {
    #[serde(rename = "Names", default)]
    names: Option<Vec<String>>,
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "ExitCode", default)]
    exit_code: i32,
    #[serde(rename = "StartedAt", default)]
    started_at: i64,
    #[serde(rename = "IsInfra", default)]
    is_infra: bool,
    #[serde(rename = "PodName", default)]
    pod_name: String,
}

/// The app containers in `podman ps --all --pod --format json` output;
/// infra containers and containers outside a pod are skipped.
pub fn decode_ps(bytes: &[u8]) -> Result<Vec<ObservedContainer>, ContainersError> {
    if bytes.len() > MAX_PS_BYTES {
        return Err(ContainersError::TooLarge(bytes.len()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let list: Vec<PsContainer> =
        serde_json::from_slice(bytes).map_err(|e| ContainersError::Malformed(e.to_string()))?;
    Ok(list
        .into_iter()
        .filter(|c| !c.is_infra && !c.pod_name.is_empty())
        .filter_map(|c| {
            let name = c.names?.into_iter().next()?;
            Some(ObservedContainer {
                pod: c.pod_name,
                name,
                state: c.state.to_ascii_lowercase(),
                exit_code: c.exit_code,
                started_at: c.started_at,
            })
        })
        .collect())
}

/// For the fuzz target: any bytes decode or fail cleanly, never panic;
/// what decodes keeps its invariants.
pub fn fuzz_ps(bytes: &[u8]) {
    if let Ok(list) = decode_ps(bytes) {
        for c in &list {
            assert!(!c.pod.is_empty() && !c.name.is_empty());
            assert!(!(c.is_running() && c.has_crashed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// As podman 4.3.1 printed it (PODMAN-4.3.md section 4, with `--pod`),
    /// plus an exited one, an infra one and one outside any pod.
    const MEASURED: &str = r#"[
     {"AutoRemove":false,"Command":null,"CreatedAt":"4 seconds ago","Exited":false,
      "ExitedAt":-62135596800,"ExitCode":0,"Id":"1191","Image":"localhost/busybox:test",
      "IsInfra":false,"Labels":{"io.flotta.agent/managed":"true"},"Mounts":[],
      "Names":["wl1-app"],"Namespaces":{},"Networks":[],"Pid":17078,"Pod":"1bb9",
      "PodName":"wl1","Ports":null,"Size":null,"StartedAt":1796197067,"State":"running",
      "Status":"Up 4 seconds ago","Created":1796197067},
     {"Exited":true,"ExitedAt":1796197146,"ExitCode":3,"Names":["wl2-job"],"PodName":"wl2",
      "IsInfra":false,"StartedAt":1796197100,"State":"exited","Status":"Exited (3) 20 seconds ago"},
     {"Names":["84d3-infra"],"PodName":"wl1","IsInfra":true,"State":"running"},
     {"Names":["loose"],"PodName":"","IsInfra":false,"State":"running"}]"#;

    #[test]
    fn decodes_what_podman_4_3_prints() {
        let list = decode_ps(MEASURED.as_bytes()).unwrap();
        assert_eq!(
            list,
            [
                ObservedContainer {
                    pod: "wl1".into(),
                    name: "wl1-app".into(),
                    state: "running".into(),
                    exit_code: 0,
                    started_at: 1_796_197_067,
                },
                ObservedContainer {
                    pod: "wl2".into(),
                    name: "wl2-job".into(),
                    state: "exited".into(),
                    exit_code: 3,
                    started_at: 1_796_197_100,
                },
            ]
        );
        assert!(list[0].is_running() && !list[0].has_crashed());
        assert!(!list[1].is_running() && list[1].has_crashed());
    }

    #[test]
    fn nothing_printed_is_no_container_and_garbage_is_a_clear_error() {
        assert_eq!(decode_ps(b"").unwrap(), []);
        assert_eq!(decode_ps(b" \n").unwrap(), []);
        assert_eq!(decode_ps(b"[]").unwrap(), []);
        let err = decode_ps(b"Error: nope").unwrap_err();
        assert!(err.is_retriable() && err.to_string().contains("podman ps"));
        let big = vec![b' '; MAX_PS_BYTES + 1];
        assert!(!decode_ps(&big).unwrap_err().is_retriable());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_ps(&bytes);
        }

        #[test]
        fn fields_of_any_type_never_panic(
            state in prop_oneof![Just("\"running\"".to_owned()), Just("3".to_owned()), Just("null".to_owned())],
            exit in prop_oneof![Just("0".to_owned()), Just("-1".to_owned()), Just("\"x\"".to_owned()), Just("99999999999".to_owned())],
            names in prop_oneof![Just("[]".to_owned()), Just("[\"a-b\"]".to_owned()), Just("null".to_owned())],
        ) {
            let text = format!(r#"[{{"Names":{names},"PodName":"p","State":{state},"ExitCode":{exit}}}]"#);
            fuzz_ps(text.as_bytes());
        }
    }
}
