//! Workloads as Quadlet units, end to end, on a machine where they are the
//! agent's path: Debian 13 booted with systemd-nspawn (`flotta_e2e::nspawn`),
//! systemd 257 as PID 1 and podman 5. The server runs on the host, the
//! agent in the machine as a systemd service.
//!
//! An operator applies an EdgeWorkload: the agent writes
//! `flotta-web.kube`, systemd runs it and the server shows the workload
//! running. A changed specification replaces the pod once. The machine
//! reboots with the agent disabled: systemd starts the workload at boot,
//! without the agent; the agent, started later, adopts the pod as it is
//! (no new pod). A pod podman cannot start is a `Failed` event with
//! podman's reason from the unit's journal. Deleting the EdgeWorkload
//! removes the unit and the pod. The user's own pod and unit are never
//! touched.
//!
//! The second test runs the other path on the same podman 5: Quadlet
//! turned off, the agent plays the pods itself.

#![allow(clippy::unwrap_used)]

mod agent_support;

use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::{failed_events, workload_phase};
use flotta_e2e::nspawn::Machine;
use flotta_e2e::podman::BUSYBOX_IMAGE;
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_e2e::wait::wait_for;

const ID: &str = "quadlet-1";
const UNITS: &str = "/etc/containers/systemd";

/// The agent's configuration: workloads on the machine's own podman, no
/// pulls (the image is there), fast looks and restarts.
const AGENT_TOML: &str = "heartbeat_period_seconds = 1\n\
     [link]\nupload_interval_seconds = 1\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
     [workloads]\nplay_args = [\"--network\", \"none\"]\npull_on_link_profiles = []\n\
     stop_timeout_seconds = 1\nmonitoring_interval_seconds = 5\n\
     restart_backoff_initial_seconds = 1\nrestart_backoff_max_seconds = 2\n";

/// The agent, run in the machine as the transient service `flotta-agent`.
struct MachineAgent {
    proc: AgentProc,
    bin: String,
}

impl MachineAgent {
    fn start(&self, m: &Machine) {
        m.ok(&[
            "systemd-run",
            "--unit=flotta-agent",
            "--collect",
            "--property=StandardOutput=null",
            &format!(
                "--property=StandardError=append:{}",
                self.proc.data_dir.join("agent.log").display()
            ),
            &self.bin,
            "run",
            "--config",
            &self.proc.config.display().to_string(),
        ]);
    }

    fn stop(&self, m: &Machine) {
        m.ok(&["systemctl", "stop", "flotta-agent"]);
    }
}

fn workload(name: &str, command: &str, version: u32) -> String {
    format!(
        "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\n\
         metadata:\n  name: {name}\n  namespace: default\nspec:\n  type: pod\n  device: {ID}\n  \
         pod:\n    spec:\n      containers:\n      - name: app\n        image: {BUSYBOX_IMAGE}\n        \
         command: [{command}]\n        \
         env:\n        - name: VERSION\n          value: \"{version}\"\n"
    )
}

fn pod_running(m: &Machine, name: &str) -> bool {
    m.stdout(&["podman", "pod", "inspect", "--format", "{{.State}}", name]) == "Running"
}

fn unit_state(m: &Machine, unit: &str) -> String {
    m.stdout(&["systemctl", "is-active", unit])
}

/// `wait_for` that also prints when each wait ended.
type Waits = dyn Fn(&str, Duration, &mut dyn FnMut() -> bool);

fn timed_waits() -> impl Fn(&str, Duration, &mut dyn FnMut() -> bool) {
    let began = Instant::now();
    move |what, limit, done| {
        wait_for(what, limit, done);
        eprintln!("{:>6.1?} {what}", began.elapsed());
    }
}

/// A booted machine with the busybox image, a server on the host and the
/// agent (configured with `toml`) running in the machine.
fn start(
    dir: &Path,
    toml: &str,
    before_agent: impl FnOnce(&Machine),
) -> (Machine, ServerProc, MachineAgent) {
    let bins = bin_dir().unwrap();
    let m = Machine::boot(&[dir, &bins]);
    m.import_busybox(dir);
    before_agent(&m);
    let server = ServerProc::start(
        &bins,
        dir,
        "default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
    )
    .unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let agent = MachineAgent {
        proc: AgentProc::configure(&bins, dir, ID, &url, &server.factory_dir, toml).unwrap(),
        bin: bins.join("flotta-agent").display().to_string(),
    };
    agent.start(&m);
    (m, server, agent)
}

/// After the agent's first window, whose log names its path (`path`), the
/// workload `web` is applied and shown running on the server.
fn web_running(server: &ServerProc, agent: &MachineAgent, path: &str, wait_for: &Waits) {
    let limit = Duration::from_secs(90);
    wait_for("the agent's first window", limit, &mut || {
        agent.proc.windows_ended() >= 1
    });
    let log = agent.proc.log();
    assert!(log.contains(path), "{log}");
    server.apply(&workload("web", "sh, -c, 'echo up; exec sleep 600'", 1));
    wait_for("the server to show web running", limit, &mut || {
        workload_phase(server, ID, "web").as_deref() == Some("running")
    });
}

#[test]
fn systemd_runs_the_workloads_the_agent_writes_as_quadlet_units_also_at_boot_without_it() {
    let dir = tempfile::tempdir().unwrap();
    // The user's own pod and Quadlet unit.
    let users_unit = Path::new(UNITS).join("web.kube");
    let (mut m, server, agent) = start(dir.path(), AGENT_TOML, |m| {
        m.ok(&["podman", "pod", "create", "--name", "users-own"]);
        std::fs::write(m.path(&users_unit), "[Kube]\nYaml=/nowhere/users.yaml\n").unwrap();
    });
    let limit = Duration::from_secs(90);
    let wait_for = timed_waits();
    // Deployed as a unit that systemd runs.
    web_running(
        &server,
        &agent,
        "workloads: Quadlet units in /etc/containers/systemd (podman 5.",
        &wait_for,
    );
    let unit = m.path(&Path::new(UNITS).join("flotta-web.kube"));
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains("Yaml=") && text.contains("web.json"),
        "{text}"
    );
    assert_eq!(unit_state(&m, "flotta-web.service"), "active");
    assert!(pod_running(&m, "web"));
    let first = m.pod_id("web");

    // A new specification: the pod is replaced, once.
    server.apply(&workload("web", "sh, -c, 'echo up2; exec sleep 600'", 2));
    wait_for("web replaced and running", limit, &mut || {
        let id = m.pod_id("web");
        !id.is_empty() && id != first && pod_running(&m, "web")
    });
    let second = m.pod_id("web");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(m.pod_id("web"), second, "replaced more than once");
    assert_eq!(unit_state(&m, "flotta-web.service"), "active");

    // Reboot with the agent stopped: systemd alone brings web back.
    agent.stop(&m);
    m.reboot();
    wait_for(
        "web running after the reboot, without the agent",
        limit,
        &mut || pod_running(&m, "web"),
    );
    assert_eq!(unit_state(&m, "flotta-web.service"), "active");
    assert_ne!(unit_state(&m, "flotta-agent.service"), "active");
    let booted = m.pod_id("web");

    // The agent adopts it as it is.
    let windows = agent.proc.windows_ended();
    agent.start(&m);
    wait_for("the restarted agent's windows", limit, &mut || {
        agent.proc.windows_ended() >= windows + 3
    });
    assert_eq!(
        workload_phase(&server, ID, "web").as_deref(),
        Some("running")
    );
    assert_eq!(
        m.pod_id("web"),
        booted,
        "the agent replaced a pod systemd started"
    );

    // A pod podman cannot start: podman's reason from the unit's journal.
    server.apply(&workload("broken", "/no/such/program", 1));
    wait_for(
        "the broken unit's failure on the server",
        limit,
        &mut || {
            failed_events(&server, ID)
                .iter()
                .any(|e| e.contains("flotta-broken.service: ") && e.contains("/no/such/program"))
        },
    );
    let reported = failed_events(&server, ID);
    eprintln!(
        "reported: {:?}",
        reported.iter().find(|e| e.contains("flotta-broken"))
    );
    let out = server
        .command(&["delete", "edgeworkload", "broken"])
        .unwrap();
    assert!(out.status.success());

    // Deleted: unit and pod gone; the user's pod and unit stay.
    let out = server.command(&["delete", "edgeworkload", "web"]).unwrap();
    assert!(out.status.success());
    wait_for("web's pod and unit gone", limit, &mut || {
        m.pod_id("web").is_empty() && !unit.exists()
    });
    wait_for("broken's unit gone", limit, &mut || {
        !m.path(&Path::new(UNITS).join("flotta-broken.kube"))
            .exists()
    });
    assert_ne!(unit_state(&m, "flotta-web.service"), "active");
    assert!(!m.pod_id("users-own").is_empty());
    assert!(m.path(&users_unit).exists());
    agent.stop(&m);
}

#[test]
fn with_quadlet_turned_off_the_agent_plays_the_pods_on_podman_5() {
    let dir = tempfile::tempdir().unwrap();
    let toml = AGENT_TOML.replace("[workloads]\n", "[workloads]\nquadlet = false\n");
    let (m, server, agent) = start(dir.path(), &toml, |_| {});
    let limit = Duration::from_secs(90);
    let wait_for = timed_waits();
    web_running(
        &server,
        &agent,
        "workloads: played by the agent, which starts them at its start (Quadlet units are turned off",
        &wait_for,
    );
    assert!(pod_running(&m, "web"));
    assert!(!m.path(&Path::new(UNITS).join("flotta-web.kube")).exists());
    let out = server.command(&["delete", "edgeworkload", "web"]).unwrap();
    assert!(out.status.success());
    wait_for("web's pod gone", limit, &mut || m.pod_id("web").is_empty());
    agent.stop(&m);
}
