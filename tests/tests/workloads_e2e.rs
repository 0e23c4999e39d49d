//! EdgeWorkloads end to end: a real server, a real agent and a real podman
//! (a private storage: `flotta_e2e::podman`). An operator applies an
//! EdgeWorkload; the device runs it and the server shows it running
//! (EdgeDevice `status.workloads`, the WORKLOADS column, `describe`), with
//! the value of the ConfigMap it references in its environment (missing at
//! first: a condition on the workload and a `Failed` event, until it is
//! applied), and its
//! output in `flotta-server logs`, capped. A changed specification
//! replaces the pod once. An agent killed (-9) while it deploys converges
//! after its restart. A crash is an event on the server and the container
//! runs again. After a "reboot"
//! with the server gone (agent stopped, pod stopped), the workload comes
//! back from the cached configuration. A workload whose image is missing
//! on a link that may not pull is a `Failed` event, not a retry loop.
//! Deleting the EdgeWorkload removes the pod, and a user's own pod on the
//! same podman is never touched. Secrets reach the container and a
//! registry its credentials (the second test).

#![allow(clippy::unwrap_used)]

mod agent_support;

use std::time::Duration;

use base64::Engine as _;

use agent_support::{failed_events, workload_phase};
use flotta_e2e::podman::{BUSYBOX_IMAGE, TestPodman};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_e2e::registry::CredentialsRegistry;
use flotta_e2e::wait::wait_for;

const ID: &str = "workloads-1";

/// The agent's configuration: podman on the test's storage; with `pulls`, images may be pulled on the agent's
/// (ethernet) link, from registries without TLS (the test's own).
fn agent_toml_pulling(p: &TestPodman, pulls: bool) -> String {
    let args: Vec<String> = p.cli.global_args.iter().map(|a| format!("{a:?}")).collect();
    let (profiles, tls) = if pulls {
        ("\"ethernet\"", ", \"--tls-verify=false\"")
    } else {
        ("", "")
    };
    format!(
        "heartbeat_period_seconds = 1\n\
         [link]\nupload_interval_seconds = 1\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
         [workloads]\npodman_args = [{}]\nplay_args = [\"--network\", \"none\"{tls}]\n\
         pull_on_link_profiles = [{profiles}]\nstop_timeout_seconds = 1\nmonitoring_interval_seconds = 5\n\
         restart_backoff_initial_seconds = 1\nrestart_backoff_max_seconds = 2\n\
         log_lines_per_second = 5\n",
        args.join(", ")
    )
}

/// A server, a private podman and an agent registered to the server,
/// running; `pulls` as in [`agent_toml_pulling`].
fn start(dir: &std::path::Path, pulls: bool) -> (TestPodman, ServerProc, AgentProc) {
    let bins = bin_dir().unwrap();
    let p = TestPodman::start();
    // Phases reach the server with heartbeats: one a second here.
    let server = ServerProc::start(
        &bins,
        dir,
        "default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
    )
    .unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let mut agent = AgentProc::configure(
        &bins,
        dir,
        ID,
        &url,
        &server.factory_dir,
        &agent_toml_pulling(&p, pulls),
    )
    .unwrap();
    for (k, v) in &p.cli.env {
        agent.set_env(k, v);
    }
    agent.restart().unwrap();
    (p, server, agent)
}

/// A workload printing "up" and its ConfigMap's greeting on stdout and "oops" on stderr, then (with
/// `chatty`) 20 lines a second; its logs are collected.
fn workload_yaml(name: &str, image: &str, chatty: bool) -> String {
    workload_version(name, image, chatty, 1)
}

/// [`workload_yaml`] with `VERSION` in its environment: another version
/// is another specification.
fn workload_version(name: &str, image: &str, chatty: bool, version: u32) -> String {
    let then = if chatty {
        "while true; do echo tick; sleep 0.05; done"
    } else {
        "exec sleep 600"
    };
    format!(
        "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\n\
         metadata:\n  name: {name}\n  namespace: default\nspec:\n  type: pod\n  device: {ID}\n  \
         logCollection: syslog\n  \
         pod:\n    spec:\n      containers:\n      - name: app\n        image: {image}\n        \
         command: [sh, -c, 'echo up $GREETING; echo oops >&2; {then}']\n        \
         env:\n        - name: VERSION\n          value: \"{version}\"\n        - name: GREETING\n          valueFrom:\n            configMapKeyRef: {{name: greetings, key: greeting}}\n"
    )
}

/// `wait_for` that also prints when each wait ended, from now: where a
/// slow or failed run spent its time.
fn timed_waits() -> impl Fn(&str, Duration, &mut dyn FnMut() -> bool) {
    let began = std::time::Instant::now();
    move |what, limit, done| {
        wait_for(what, limit, done);
        eprintln!("{:>6.1?} {what}", began.elapsed());
    }
}

/// `flotta-server logs ID ARGS` lines.
fn logs(server: &ServerProc, args: &[&str]) -> Vec<String> {
    let mut all = vec!["logs", ID];
    all.extend_from_slice(args);
    let out = server.command(&all).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The EdgeDevice's `status.workloads[name].phase`.
fn phase(server: &ServerProc, name: &str) -> Option<String> {
    workload_phase(server, ID, name)
}

/// The id of pod `name` ("" when there is none).
fn pod_id(p: &TestPodman, name: &str) -> String {
    let out = p.podman(&["pod", "inspect", "--format", "{{.Id}}", name]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `podman pod ps` status of `name` ("" when there is no such pod).
fn pod_status(p: &TestPodman, name: &str) -> String {
    let out = p.podman(&[
        "pod",
        "ps",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Status}}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Messages of the `Failed` events the server stored.
fn failures(server: &ServerProc) -> Vec<String> {
    failed_events(server, ID)
}

#[test]
fn an_edge_workload_runs_restarts_survives_a_reboot_offline_and_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (p, mut server, mut agent) = start(dir.path(), false);
    p.ok(&["pod", "create", "--name", "users-own"]);
    let limit = Duration::from_secs(90);
    let wait_for = timed_waits();
    wait_for("the first window", limit, &mut || {
        agent.windows_ended() >= 1
    });

    // The workload first, its ConfigMap missing: said on the workload,
    // and the device's play fails until the ConfigMap is applied.
    server.apply(&workload_yaml("web", BUSYBOX_IMAGE, true));
    let describe_ew = || {
        let out = server.command(&["describe", "ew", "web"]).unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for("the missing ConfigMap on the workload", limit, &mut || {
        describe_ew().contains("ConfigMap greetings not found")
    });
    wait_for("the failed play reported", limit, &mut || {
        failures(&server)
            .iter()
            .any(|m| m.contains("workload web") && m.contains("greetings"))
    });
    server.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greetings\n  namespace: default\n\
         data:\n  greeting: hello-from-a-configmap\n",
    );
    let cms = server.command(&["get", "cm"]).unwrap();
    assert!(String::from_utf8_lossy(&cms.stdout).contains("greetings"));
    wait_for("the ConfigMap resolved on the workload", limit, &mut || {
        describe_ew().contains("every referenced ConfigMap and Secret exists")
    });
    wait_for("pod web running", limit, &mut || {
        pod_status(&p, "web") == "Running"
    });
    wait_for("the server to show web running", limit, &mut || {
        phase(&server, "web").as_deref() == Some("running")
    });
    let table = server.command(&["get", "edgedevices"]).unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().any(|l| l.contains(ID) && l.contains(" 1/1 ")),
        "{table}"
    );
    let described = server.command(&["describe", "edgedevice", ID]).unwrap();
    let described = String::from_utf8_lossy(&described.stdout);
    let section = described.split("Workloads:").nth(1).unwrap_or_default();
    assert!(
        section
            .lines()
            .any(|l| l.split_whitespace().eq(["web", "running"])),
        "{described}"
    );

    // Its output, capped at 5 lines a second, the excess counted.
    wait_for("web's logs on the server", limit, &mut || {
        let lines = logs(&server, &["--workload", "web", "--since", "1h"]);
        let has = |words: &[&str]| {
            lines
                .iter()
                .any(|l| l.split_whitespace().skip(1).eq(words.iter().copied()))
        };
        has(&["web", "info", "up", "hello-from-a-configmap"])
            && has(&["web", "warn", "oops"])
            && lines
                .iter()
                .any(|l| l.contains(" warn ") && l.contains("over the cap"))
    });
    let lines = logs(&server, &["--workload", "web"]);
    assert!(
        lines
            .iter()
            .all(|l| l.split_whitespace().nth(1) == Some("web")),
        "{lines:?}"
    );
    let ticks = lines.iter().filter(|l| l.ends_with(" tick")).count();
    assert!(ticks >= 1, "{lines:?}");

    // A changed specification replaces the pod, once.
    let first = pod_id(&p, "web");
    server.apply(&workload_version("web", BUSYBOX_IMAGE, true, 2));
    wait_for("web replaced", limit, &mut || {
        let now = pod_id(&p, "web");
        !now.is_empty() && now != first && pod_status(&p, "web") == "Running"
    });
    let second = pod_id(&p, "web");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pod_id(&p, "web"), second, "replaced more than once");

    // kill -9 of the agent while it deploys: it converges after a restart.
    server.apply(&workload_yaml("batch", BUSYBOX_IMAGE, false));
    let play = agent.data_dir.join("workloads/pods/batch.json");
    wait_for("batch's play file written", limit, &mut || play.exists());
    agent.kill9();
    agent.restart().unwrap();
    wait_for("batch running after the restart", limit, &mut || {
        pod_status(&p, "batch") == "Running"
    });
    // The killed agent's `kube play` (a process of its own) may finish
    // after the restart, and the new agent may then replace that pod once:
    // converged is the same running pod for 3 s.
    let (mut seen, mut since) = (String::new(), std::time::Instant::now());
    wait_for("batch settled", limit, &mut || {
        let id = pod_id(&p, "batch");
        if id.is_empty() || id != seen || pod_status(&p, "batch") != "Running" {
            (seen, since) = (id, std::time::Instant::now());
            return false;
        }
        since.elapsed() >= Duration::from_secs(3)
    });
    let named = p.ok(&[
        "pod",
        "ps",
        "--filter",
        "name=^batch$",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(named.lines().count(), 1, "{named}");

    // A crash: reported, and the container runs again (podman itself
    // restarts nothing: the agent does).
    p.ok(&["kill", "web-app"]);
    wait_for("the crash reported", limit, &mut || {
        failures(&server)
            .iter()
            .any(|m| m.contains("web-app exited with code 137"))
    });
    wait_for("web-app running again", limit, &mut || {
        pod_status(&p, "web") == "Running"
    });

    // A "reboot" without the server: the agent stops, the pod stops (as
    // podman leaves pods after a reboot); the agent comes back offline.
    server.kill9();
    agent.stop().unwrap();
    p.ok(&["pod", "stop", "--time", "0", "web"]);
    assert_ne!(pod_status(&p, "web"), "Running");
    agent.restart().unwrap();
    wait_for("web running again, offline", limit, &mut || {
        pod_status(&p, "web") == "Running"
    });
    server.restart().unwrap();

    // An image that is not on the device, on a link that may not pull.
    server.apply(&workload_yaml("cam", "localhost/camera:1", false));
    wait_for("the missing image reported", limit, &mut || {
        failures(&server)
            .iter()
            .any(|m| m.contains("image localhost/camera:1 not present; pulls disabled"))
    });
    std::thread::sleep(Duration::from_secs(3));
    let reported = failures(&server)
        .iter()
        .filter(|m| m.contains("localhost/camera:1"))
        .count();
    assert_eq!(
        reported,
        1,
        "reported once, not at every retry: {:?}",
        failures(&server)
    );
    wait_for("the server to show cam deploying", limit, &mut || {
        phase(&server, "cam").as_deref() == Some("deploying")
    });

    // Gone from the configuration: gone from the device; the user's pod stays.
    for name in ["web", "cam", "batch"] {
        let out = server.command(&["delete", "edgeworkload", name]).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_for("pods web and batch removed", limit, &mut || {
        pod_status(&p, "web").is_empty() && pod_status(&p, "batch").is_empty()
    });
    wait_for("no workloads on the server", limit, &mut || {
        ["web", "cam", "batch"]
            .iter()
            .all(|w| phase(&server, w).is_none())
    });
    assert!(!pod_status(&p, "users-own").is_empty());
    let log = agent.log();
    agent.stop().unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

/// A workload printing its Secret's values (env `secretKeyRef` and
/// `envFrom.secretRef`), its logs collected.
fn vault_yaml() -> String {
    format!(
        "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\n\
         metadata:\n  name: vault\n  namespace: default\nspec:\n  type: pod\n  device: {ID}\n  \
         logCollection: syslog\n  \
         pod:\n    spec:\n      containers:\n      - name: app\n        image: {BUSYBOX_IMAGE}\n        \
         command: [sh, -c, 'echo password=$P user=$user; exec sleep 600']\n        \
         env:\n        - name: P\n          valueFrom:\n            secretKeyRef: {{name: db, key: password}}\n        \
         envFrom:\n        - secretRef: {{name: db}}\n"
    )
}

fn db_secret(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\n\
         stringData:\n  password: {password}\n  user: admin\n"
    )
}

/// Secrets end to end: an operator applies a Secret and a workload reading
/// it; the container sees the values (env and envFrom, through a podman
/// secret the agent made), the play file holds none of them, a changed
/// Secret replaces the pod with the new values, and the podman secret
/// goes with the last workload reading it. A registry Secret
/// (`imageRegistries.secretRef`) becomes the auth file podman pulls with:
/// a registry on loopback sees its credentials, and the device keeps no
/// copy of them.
#[test]
fn secrets_reach_the_container_and_registry_credentials_reach_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (p, server, mut agent) = start(dir.path(), true);
    let limit = Duration::from_secs(90);
    let wait_for = timed_waits();
    wait_for("the first window", limit, &mut || {
        agent.windows_ended() >= 1
    });
    server.apply(&db_secret("s3cr3t"));
    server.apply(&vault_yaml());
    let table = server.command(&["get", "secrets"]).unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["db", "Opaque", "2"])),
        "{table}"
    );
    let has_line = |text: &str| {
        logs(&server, &["--workload", "vault", "--since", "1h"])
            .iter()
            .any(|l| l.ends_with(text))
    };
    wait_for("the Secret's values in the container", limit, &mut || {
        has_line("password=s3cr3t user=admin")
    });
    let secrets = p.ok(&["secret", "ls", "--noheading", "--format", "{{.Name}}"]);
    assert_eq!(secrets.trim(), "db");
    let play = std::fs::read_to_string(agent.data_dir.join("workloads/pods/vault.json")).unwrap();
    assert!(
        !play.contains("s3cr3t") && !play.contains("czNjcjN0"),
        "{play}"
    );
    let first = pod_id(&p, "vault");
    server.apply(&db_secret("n3w"));
    wait_for("the changed Secret in a new pod", limit, &mut || {
        has_line("password=n3w user=admin")
    });
    assert_ne!(pod_id(&p, "vault"), first);

    // A private registry: the auth file from the workload's registry Secret.
    let registry = CredentialsRegistry::start();
    let host = registry.addr.to_string();
    let basic = base64::engine::general_purpose::STANDARD.encode("robot:hunter2");
    let auth = format!(r#"{{"auths":{{"{host}":{{"auth":"{basic}"}}}}}}"#);
    server.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pull\n  namespace: default\n\
         type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{auth}'\n"
    ));
    server.apply(&format!(
        "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\n\
         metadata:\n  name: private\n  namespace: default\nspec:\n  type: pod\n  device: {ID}\n  \
         imageRegistries:\n    secretRef: {{name: pull}}\n  \
         pod:\n    spec:\n      containers:\n      - name: app\n        image: {host}/app:1\n"
    ));
    let expected = format!("Basic {basic}");
    wait_for(
        "the registry shown the Secret's credentials",
        limit,
        &mut || registry.authorizations().contains(&expected),
    );
    wait_for("the failed pull reported", limit, &mut || {
        failures(&server)
            .iter()
            .any(|m| m.contains("workload private") && m.contains(&host))
    });
    let leftovers: Vec<String> = std::fs::read_dir(agent.data_dir.join("workloads/pods"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("auth"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "credentials left on disk: {leftovers:?}"
    );

    for name in ["vault", "private"] {
        let out = server.command(&["delete", "edgeworkload", name]).unwrap();
        assert!(out.status.success());
    }
    wait_for(
        "the podman secret removed with its last workload",
        limit,
        &mut || {
            pod_status(&p, "vault").is_empty()
                && p.ok(&["secret", "ls", "--noheading", "--format", "{{.Name}}"])
                    .trim()
                    .is_empty()
        },
    );
    let log = agent.log();
    agent.stop().unwrap();
    assert!(!log.contains("panicked"), "{log}");
}
