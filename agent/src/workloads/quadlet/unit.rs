//! The text of a workload's Quadlet `.kube` unit, and how the agent
//! recognises its own units in a directory it shares with the user's.
//!
//! Quadlet (podman ≥ 4.4) turns `NAME.kube` in `/etc/containers/systemd`
//! into `NAME.service` at every `daemon-reload` and at boot, running
//! `podman kube play --replace --service-container=true FILE` and, when
//! stopped, `podman kube down FILE`. So systemd starts the workloads at
//! boot, before (and without) the agent.

use std::path::Path;

/// First line of every unit the agent writes: the agent only ever changes
/// or removes files that begin with it.
pub const MARKER: &str = "# Written by flotta-agent: rewritten and removed by it, do not edit.";

/// Unit files are `flotta-POD.kube` (so `flotta-POD.service`): a user's
/// own `POD.kube` is another unit.
pub const PREFIX: &str = "flotta-";

/// What a unit runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec<'a> {
    /// The pod (the workload's name).
    pub pod: &'a str,
    /// The play file (absolute).
    pub play_file: &'a Path,
    /// Arguments before every podman command (Quadlet's `GlobalArgs`).
    pub global_args: &'a [String],
    /// Extra `podman kube play` arguments (`PodmanArgs`).
    pub play_args: &'a [String],
    /// The `k8s-file` log's `max-size` (0: podman's default).
    pub log_max_bytes: u64,
    /// How long systemd lets the play run (it may pull images).
    pub start_timeout_seconds: u64,
}

/// `flotta-POD.kube`.
pub fn file_name(pod: &str) -> String {
    format!("{PREFIX}{pod}.kube")
}

/// `flotta-POD.service`.
pub fn service(pod: &str) -> String {
    format!("{PREFIX}{pod}.service")
}

/// The pod a unit file of ours is for, from its file name.
pub fn pod_of(file_name: &str) -> Option<&str> {
    file_name.strip_prefix(PREFIX)?.strip_suffix(".kube")
}

/// Whether `text` is a unit this agent wrote.
pub fn is_ours(text: &str) -> bool {
    text.lines().next() == Some(MARKER)
}

/// The unit's text.
pub fn render(spec: &UnitSpec<'_>) -> String {
    let mut podman_args: Vec<String> = Vec::new();
    if spec.log_max_bytes > 0 {
        podman_args.push("--log-opt".into());
        podman_args.push(format!("max-size={}", spec.log_max_bytes));
    }
    podman_args.extend(spec.play_args.iter().cloned());
    let mut text = format!(
        "{MARKER}\n[Unit]\nDescription=flotta workload {pod}\n\
         Wants=network-online.target\nAfter=network-online.target\n\n\
         [Kube]\nYaml={yaml}\nLogDriver=k8s-file\n",
        pod = spec.pod,
        yaml = quote(&spec.play_file.to_string_lossy()),
    );
    if !podman_args.is_empty() {
        text.push_str(&format!("PodmanArgs={}\n", words(&podman_args)));
    }
    if !spec.global_args.is_empty() {
        text.push_str(&format!("GlobalArgs={}\n", words(spec.global_args)));
    }
    // The agent restarts crashed containers (with its back-off) and retries
    // failed deployments; systemd only starts the unit at boot.
    text.push_str(&format!(
        "\n[Service]\nTimeoutStartSec={}\n",
        spec.start_timeout_seconds
    ));
    text.push_str("\n[Install]\nWantedBy=multi-user.target default.target\n");
    text
}

/// Words as systemd reads a command line: each quoted when it holds
/// anything but plain characters.
fn words(args: &[String]) -> String {
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// `s`, double-quoted with `\`, `"` and `%` escaped when it is not plain.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c));
    if plain {
        return s.to_owned();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '\\' | '"' => {
                q.push('\\');
                q.push(c);
            }
            // systemd expands specifiers (`%n`) in these lines.
            '%' => q.push_str("%%"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_plays_the_file_with_the_agents_arguments() {
        let global = vec!["--root".to_owned(), "/var/lib/my root".to_owned()];
        let play = vec!["--network".to_owned(), "none".to_owned()];
        let text = render(&UnitSpec {
            pod: "web",
            play_file: Path::new("/var/lib/flotta/workloads/web.json"),
            global_args: &global,
            play_args: &play,
            log_max_bytes: 1 << 20,
            start_timeout_seconds: 300,
        });
        assert!(is_ours(&text));
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            "[Kube]",
            "Yaml=/var/lib/flotta/workloads/web.json",
            "LogDriver=k8s-file",
            "PodmanArgs=--log-opt max-size=1048576 --network none",
            "GlobalArgs=--root \"/var/lib/my root\"",
            "TimeoutStartSec=300",
            "WantedBy=multi-user.target default.target",
        ] {
            assert!(lines.contains(&want), "{want} in\n{text}");
        }
        let bare = render(&UnitSpec {
            pod: "web",
            play_file: Path::new("/d/web.json"),
            global_args: &[],
            play_args: &[],
            log_max_bytes: 0,
            start_timeout_seconds: 5,
        });
        assert!(!bare.contains("PodmanArgs") && !bare.contains("GlobalArgs"));
    }

    #[test]
    fn names_and_quoting() {
        assert_eq!(file_name("web"), "flotta-web.kube");
        assert_eq!(service("web"), "flotta-web.service");
        assert_eq!(pod_of("flotta-web.kube"), Some("web"));
        assert_eq!(pod_of("web.kube"), None);
        assert_eq!(pod_of("flotta-web.container"), None);
        assert!(!is_ours("[Kube]\nYaml=x\n"));
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("100%"), "\"100%%\"");
        assert_eq!(quote("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(quote(""), "\"\"");
    }
}
