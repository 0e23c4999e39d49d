//! The agent as a board runs it: installed with the project's unit
//! (`agent/systemd/flotta-agent.service`, hardening and all) in a Debian 13
//! machine booted with systemd-nspawn (`flotta_e2e::nspawn`), its state in
//! `/var/lib/flotta`, the server on the host.
//!
//! systemd sees it ready (`Type=notify`) with its watchdog armed and a
//! status line; it registers and reports; a workload runs under the
//! hardened unit; its failures are warnings in the journal; an event loop
//! that stops (SIGSTOP) is restarted by the watchdog, and the workload's
//! containers outlive that restart (their conmons too, where the agent
//! played the pod); a stop is clean. Both workload paths run under the
//! hardened unit: the agent playing pods, and Quadlet units it writes.

#![allow(clippy::unwrap_used)]

mod agent_support;

use std::path::Path;
use std::time::Duration;

use agent_support::workload_phase;
use flotta_e2e::nspawn::Machine;
use flotta_e2e::podman::BUSYBOX_IMAGE;
use flotta_e2e::procs::{ServerProc, bin_dir};
use flotta_e2e::wait::wait_for;

const ID: &str = "systemd-1";

/// `systemctl show -p PROPERTY --value flotta-agent`.
fn property(m: &Machine, name: &str) -> String {
    m.stdout(&["systemctl", "show", "-p", name, "--value", "flotta-agent"])
}

/// The agent's journal at `priority` or more urgent.
fn journal(m: &Machine, priority: &str) -> String {
    let out = m.exec(&[
        "journalctl",
        "-u",
        "flotta-agent",
        "-p",
        priority,
        "-o",
        "cat",
        "--no-pager",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether every container of pod `name` still has its conmon (which
/// writes its log and records its exit).
fn conmons_alive(m: &Machine, name: &str) -> bool {
    let out = m.exec(&[
        "podman",
        "ps",
        "--filter",
        &format!("pod={name}"),
        "--format",
        "{{.ID}}",
    ]);
    let ids = String::from_utf8_lossy(&out.stdout).into_owned();
    !ids.trim().is_empty()
        && ids.lines().all(|id| {
            let pid = m.stdout(&["podman", "inspect", "--format", "{{.State.ConmonPid}}", id]);
            m.exec(&["test", "-d", &format!("/proc/{pid}")])
                .status
                .success()
        })
}

fn running_containers(m: &Machine) -> usize {
    let out = m.exec(&["podman", "ps", "--filter", "status=running", "--quiet"]);
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Install `from` (a host file) at `to` in the machine with `mode`.
fn install(m: &Machine, from: &Path, to: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let dest = m.path(Path::new(to));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(from, &dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn under_its_unit_the_agent_is_ready_watched_restarted_and_its_workloads_survive() {
    under_the_unit(false);
}

/// The same with the workload as a Quadlet unit, written and started by the
/// hardened agent.
#[test]
fn under_its_unit_the_agent_deploys_quadlet_units() {
    under_the_unit(true);
}

/// The scenario of the two tests above; `quadlet`: the agent's path.
fn under_the_unit(quadlet: bool) {
    let dir = tempfile::tempdir().unwrap();
    let bins = bin_dir().unwrap();
    let m = Machine::boot(&[]);
    m.import_busybox(dir.path());

    let mut server = ServerProc::start(
        &bins,
        dir.path(),
        "default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
    )
    .unwrap();
    // Installed as a board has it.
    install(
        &m,
        &bins.join("flotta-agent"),
        "/usr/local/bin/flotta-agent",
        0o755,
    );
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/systemd/flotta-agent.service");
    install(&m, &unit, "/etc/systemd/system/flotta-agent.service", 0o644);
    for f in ["ca.pem", "register.pem", "register.key"] {
        install(
            &m,
            &server.factory_dir.join(f),
            &format!("/etc/flotta/{f}"),
            0o600,
        );
    }
    let config = format!(
        "server_url = \"https://localhost:{}\"\ndevice_id = \"{ID}\"\ndata_dir = \"/var/lib/flotta\"\n\
         ca_cert_path = \"/etc/flotta/ca.pem\"\nregistration_cert_path = \"/etc/flotta/register.pem\"\n\
         registration_key_path = \"/etc/flotta/register.key\"\nheartbeat_period_seconds = 1\n\
         [link]\nupload_interval_seconds = 1\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
         [workloads]\nquadlet = {quadlet}\nplay_args = [\"--network\", \"none\"]\npull_on_link_profiles = []\n\
         stop_timeout_seconds = 1\nmonitoring_interval_seconds = 5\n",
        server.api_addr.port()
    );
    let config_path = m.path(Path::new("/etc/flotta/agent.toml"));
    std::fs::write(&config_path, config).unwrap();
    // A short watchdog, so the test need not wait a minute.
    let dropin = m.path(Path::new(
        "/etc/systemd/system/flotta-agent.service.d/test.conf",
    ));
    std::fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    std::fs::write(&dropin, "[Service]\nWatchdogSec=4\nRestartSec=1\n").unwrap();
    m.ok(&["systemctl", "daemon-reload"]);
    m.ok(&["systemctl", "enable", "--now", "flotta-agent"]);

    let limit = Duration::from_secs(90);
    assert_eq!(
        property(&m, "ActiveState"),
        "active",
        "{}",
        journal(&m, "7")
    );
    assert_eq!(property(&m, "WatchdogUSec"), "4s");
    wait_for("a status line after a window", limit, &mut || {
        property(&m, "StatusText").starts_with("queue ")
            && property(&m, "StatusText").contains("last window")
    });
    let described = server.command(&["get", "edgedevice", ID]).unwrap();
    assert!(
        String::from_utf8_lossy(&described.stdout).contains(ID),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );

    // A workload, played by the agent under its hardened unit.
    server.apply(&format!(
        "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\n\
         metadata:\n  name: web\n  namespace: default\nspec:\n  type: pod\n  device: {ID}\n  \
         pod:\n    spec:\n      containers:\n      - name: app\n        image: {BUSYBOX_IMAGE}\n        \
         command: [sh, -c, 'exec sleep 600']\n"
    ));
    wait_for("web running on the server", limit, &mut || {
        workload_phase(&server, ID, "web").as_deref() == Some("running")
    });
    let pod = m.pod_id("web");
    assert!(!pod.is_empty());
    let containers = running_containers(&m);
    let unit_state = || m.stdout(&["systemctl", "is-active", "flotta-web.service"]);
    if quadlet {
        // Written by the sandboxed agent, run by systemd.
        assert!(
            m.path(Path::new("/etc/containers/systemd/flotta-web.kube"))
                .exists()
        );
        assert_eq!(unit_state(), "active");
    } else {
        assert!(conmons_alive(&m, "web"));
    }

    // Failures are warnings in the journal.
    server.kill9();
    wait_for("a failed window at warning priority", limit, &mut || {
        journal(&m, "warning").contains("window failed")
    });
    assert!(!journal(&m, "warning").contains("configuration version"));
    server.restart().unwrap();

    // A loop that stops turning: the watchdog restarts the agent, and the
    // containers it started run on.
    let main_pid = property(&m, "MainPID");
    m.ok(&[
        "systemctl",
        "kill",
        "--kill-whom=main",
        "--signal=SIGSTOP",
        "flotta-agent",
    ]);
    wait_for("the watchdog's restart", limit, &mut || {
        property(&m, "NRestarts") == "1"
            && property(&m, "ActiveState") == "active"
            && property(&m, "MainPID") != main_pid
    });
    let journal_all = journal(&m, "7");
    assert!(journal_all.contains("Watchdog timeout"), "{journal_all}");
    assert_eq!(m.pod_id("web"), pod, "the pod was made anew");
    if quadlet {
        assert_eq!(unit_state(), "active");
    } else {
        assert!(conmons_alive(&m, "web"), "conmon killed with the agent");
    }
    assert_eq!(running_containers(&m), containers);
    wait_for("web running again on the server", limit, &mut || {
        workload_phase(&server, ID, "web").as_deref() == Some("running")
    });

    // A clean stop.
    m.ok(&["systemctl", "stop", "flotta-agent"]);
    assert!(journal(&m, "info").contains("SIGTERM: syncing the queue and stopping"));
    assert_eq!(running_containers(&m), containers);
}

/// The amd64 package (`cargo xtask dist` builds it and runs this test with
/// `FLOTTA_E2E_DEB`): installed with dpkg, the unit is enabled and started;
/// unconfigured, its status says what is missing; a configuration it refuses
/// stops it (78) with no restart loop; configured, it is ready and reports; an upgrade keeps the edited conffile;
/// removal stops it, purge removes its state.
#[test]
#[ignore = "needs the .deb: cargo xtask dist runs it with FLOTTA_E2E_DEB"]
fn the_package_installs_enables_and_starts_the_agent() {
    let deb = std::env::var_os("FLOTTA_E2E_DEB").expect("FLOTTA_E2E_DEB names the package");
    let dir = tempfile::tempdir().unwrap();
    let bins = bin_dir().unwrap();
    let m = Machine::boot(&[]);
    let server =
        ServerProc::start(&bins, dir.path(), "default_heartbeat_period_seconds = 1\n").unwrap();
    install(&m, Path::new(&deb), "/root/flotta-agent.deb", 0o644);
    m.ok(&["dpkg", "-i", "/root/flotta-agent.deb"]);
    assert_eq!(property(&m, "UnitFileState"), "enabled");
    // Not configured yet: it runs, queues, and its status says what is missing.
    wait_for(
        "the unconfigured agent's status",
        Duration::from_secs(30),
        &mut || property(&m, "StatusText").contains("/etc/flotta/ca.pem"),
    );
    assert_eq!(property(&m, "ActiveState"), "active");
    let conf = m.path(Path::new("/etc/flotta/agent.toml"));
    let shipped = std::fs::read_to_string(&conf).unwrap();
    // A configuration it refuses: exit 78 and no restart loop.
    std::fs::write(&conf, format!("{shipped}\nheartbeat_period = 5\n")).unwrap();
    m.exec(&["systemctl", "restart", "flotta-agent"]);
    wait_for(
        "the refused configuration's stop",
        Duration::from_secs(30),
        &mut || property(&m, "ActiveState") == "failed",
    );
    assert_eq!(property(&m, "ExecMainStatus"), "78");
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(property(&m, "NRestarts"), "0");
    assert!(
        journal(&m, "err").contains("heartbeat_period"),
        "{}",
        journal(&m, "7")
    );

    for f in ["ca.pem", "register.pem", "register.key"] {
        install(
            &m,
            &server.factory_dir.join(f),
            &format!("/etc/flotta/{f}"),
            0o600,
        );
    }
    let edited = shipped.replace(
        "#server_url = \"https://flotta.example.net:8043\"",
        &format!(
            "server_url = \"https://localhost:{}\"\ndevice_id = \"{ID}\"\n\
             heartbeat_period_seconds = 1",
            server.api_addr.port()
        ),
    ) + "[link]\nupload_interval_seconds = 1\n";
    assert!(
        edited.contains("\nserver_url = \"https://localhost:"),
        "the shipped configuration changed shape:\n{shipped}"
    );
    std::fs::write(&conf, &edited).unwrap();
    m.ok(&["systemctl", "restart", "flotta-agent"]);
    assert_eq!(property(&m, "ActiveState"), "active");
    wait_for(
        "a status line after a window",
        Duration::from_secs(60),
        &mut || property(&m, "StatusText").contains("last window"),
    );
    let out = server.command(&["get", "edgedevice", ID]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(ID));
    assert!(m.path(Path::new("/var/lib/flotta/queue")).exists());

    // Reinstalled (an upgrade): the edited conffile stays, the agent restarts.
    m.ok(&["dpkg", "-i", "--force-confold", "/root/flotta-agent.deb"]);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(property(&m, "ActiveState"), "active");

    m.ok(&["dpkg", "--remove", "flotta-agent"]);
    assert_ne!(property(&m, "ActiveState"), "active");
    assert!(!m.path(Path::new("/usr/bin/flotta-agent")).exists());
    assert!(
        m.path(Path::new("/var/lib/flotta")).exists(),
        "removal keeps the state"
    );
    m.ok(&["dpkg", "--purge", "flotta-agent"]);
    assert!(
        !m.path(Path::new("/var/lib/flotta")).exists(),
        "purge removes the state"
    );
}
