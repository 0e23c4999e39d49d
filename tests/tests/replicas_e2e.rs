//! Several Edge API replicas: two `flotta-server` processes on one
//! PostgreSQL store and one Kubernetes API server for CRDs, agents reaching
//! them through emulated links that a "load balancer" (the test) moves
//! between replicas, and kill -9 of a replica and of the leader mid-run.
//!
//! Checked: any replica serves any device; exactly one replica leads the
//! controller at a time (`flotta_controller_leader`), and a follower takes
//! over within seconds of the leader's death; an EdgeWorkload applied with
//! `kubectl` after the leader died reaches every device (configuration
//! converges); presence is visible with `kubectl get`; and every record each
//! agent produced is stored exactly once (the agent's queue is empty, the
//! store holds each sequence number once, none missing). TLS resumption
//! across a switch is measured (a session ticket of one replica does not
//! resume on another: a full handshake, printed).

#![allow(clippy::unwrap_used)]

mod agent_support;

use std::process::Command;
use std::time::Duration;

use flotta_e2e::kube::KubeApi;
use flotta_e2e::link::{Link, LinkConfig, LinkProfile};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, parse_metric};
use flotta_e2e::wait::eventually;
use flotta_proto::payload::Payload;
use flotta_server::device_id::DeviceId;
use flotta_server::store::{PostgresStore, Store};
use flotta_server::testing::TestPostgres;

use agent_support::{NO_PODMAN_AGENT_TOML, delivered_workloads};

const DEVICES: [&str; 3] = ["replica-dev-1", "replica-dev-2", "replica-dev-3"];
const LIMIT: Duration = Duration::from_secs(90);

/// A workload for every device labelled `fleet: replicas`.
const WORKLOAD: &str = "apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata:
  name: by-label
  namespace: default
spec:
  type: pod
  deviceSelector:
    matchLabels:
      fleet: replicas
  pod:
    spec:
      containers:
        - name: app
          image: localhost/app:1
";

struct Fleet {
    kube: KubeApi,
    replicas: Vec<ServerProc>,
    links: Vec<Link>,
    agents: Vec<AgentProc>,
}

impl Fleet {
    #[track_caller]
    fn wait(&self, what: &str, done: impl FnMut() -> bool) {
        if !eventually(LIMIT, done) {
            let mut logs = String::new();
            for r in &self.replicas {
                let text = std::fs::read_to_string(&r.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                logs += &format!(
                    "--- {} ---\n{}\n",
                    r.log.display(),
                    lines[lines.len().saturating_sub(20)..].join("\n")
                );
            }
            panic!("timed out waiting for {what}\n{logs}{}", self.kube.logs());
        }
    }

    /// Index of the replica that leads, if exactly one does.
    fn leader(&self, alive: &[bool]) -> Option<usize> {
        let leading: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| alive[i])
            .filter(|&i| {
                self.replicas[i]
                    .metrics()
                    .map(|m| parse_metric(&m, "flotta_controller_leader") == 1.0)
                    .unwrap_or(false)
            })
            .collect();
        (leading.len() == 1).then(|| leading[0])
    }

    fn presence(&self, id: &str) -> String {
        let out = self.kube.kubectl(&[
            "get",
            "edgedevice",
            id,
            "-n",
            "default",
            "-o",
            "jsonpath={.status.presence}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn point_links_at(&self, replica: usize) {
        for l in &self.links {
            l.set_upstream(self.replicas[replica].api_addr);
        }
    }

    fn handshakes(&self, replica: usize, kind: &str) -> f64 {
        self.replicas[replica]
            .metric(&format!("flotta_tls_handshakes_total{{kind=\"{kind}\"}}"))
            .unwrap_or(0.0)
    }
}

#[test]
fn replicas_share_the_fleet_and_survive_kill_9_of_the_leader() {
    let bins = bin_dir().unwrap();
    let kube = KubeApi::start();
    let crds = Command::new(bins.join("flotta-server"))
        .arg("crds")
        .output()
        .unwrap();
    kube.apply_ok(&String::from_utf8(crds.stdout).unwrap());
    for crd in [
        "edgedevices",
        "edgedevicesets",
        "edgeworkloads",
        "edgedevicesignedrequest",
    ] {
        kube.wait_established(&format!("{crd}.management.project-flotta.io"));
    }
    let url = TestPostgres::shared().create_database();
    let dir = tempfile::tempdir().unwrap();
    let common = format!(
        "objects = \"kubernetes\"\nkubeconfig_path = \"{}\"\nstore = \"postgres\"\npostgres_url = \"{url}\"\n\
         leader_check_interval_ms = 200\ndefault_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
        kube.kubeconfig_path().display()
    );
    let first = ServerProc::start(&bins, dir.path(), &common).unwrap();
    let second = ServerProc::start_replica(&first, "replica-b", &common).unwrap();
    let replicas = vec![first, second];
    let links: Vec<Link> = DEVICES
        .iter()
        .map(|_| {
            LinkConfig::new(replicas[0].api_addr, LinkProfile::ethernet())
                .start()
                .unwrap()
        })
        .collect();
    let agents: Vec<AgentProc> = DEVICES
        .iter()
        .zip(&links)
        .map(|(id, link)| {
            let url = format!("https://localhost:{}", link.addr().port());
            AgentProc::start(
                &bins,
                dir.path(),
                id,
                &url,
                &replicas[0].factory_dir,
                NO_PODMAN_AGENT_TOML,
            )
            .unwrap()
        })
        .collect();
    let mut fleet = Fleet {
        kube,
        replicas,
        links,
        agents,
    };
    let mut alive = vec![true, true];

    // One leader; every device online in the cluster.
    fleet.wait("exactly one leader", || fleet.leader(&alive).is_some());
    fleet.wait("every device online", || {
        DEVICES.iter().all(|d| fleet.presence(d) == "online")
    });

    // The load balancer moves every device to the other replica: served
    // there (a full handshake: the first replica's tickets do not resume).
    let (full_before, resumed_before) =
        (fleet.handshakes(1, "full"), fleet.handshakes(1, "resumed"));
    fleet.point_links_at(1);
    let beats = |r: &ServerProc| {
        r.metric("flotta_records_received_total{class=\"heartbeat\"}")
            .unwrap_or(0.0)
    };
    let served = beats(&fleet.replicas[1]);
    fleet.wait("heartbeats through the second replica", || {
        beats(&fleet.replicas[1]) >= served + 10.0
    });
    let (full, resumed) = (
        fleet.handshakes(1, "full") - full_before,
        fleet.handshakes(1, "resumed") - resumed_before,
    );
    eprintln!("after the switch, on the second replica: {full} full handshakes, {resumed} resumed");
    assert!(
        full >= DEVICES.len() as f64,
        "each device's first connection to the new replica is a full handshake"
    );

    // Events emitted on every device while replicas die.
    for a in &fleet.agents {
        assert!(
            a.emit(&["event", "--reason", "BeforeKill", "one"])
                .unwrap()
                .status
                .success()
        );
    }

    // kill -9 of the leader; devices go to the survivor; it takes over.
    let leader = fleet.leader(&alive).unwrap();
    let survivor = 1 - leader;
    fleet.point_links_at(survivor);
    fleet.replicas[leader].kill9();
    alive[leader] = false;
    let killed_at = std::time::Instant::now();
    fleet.wait("the survivor to lead", || {
        fleet.leader(&alive) == Some(survivor)
    });
    eprintln!(
        "fail-over after kill -9 of the leader: {:?}",
        killed_at.elapsed()
    );

    // Configuration converges under the new leader: an operator labels the
    // devices and applies a workload selecting them.
    for id in DEVICES {
        fleet
            .kube
            .kubectl_ok(&["label", "edgedevice", id, "-n", "default", "fleet=replicas"]);
    }
    fleet.kube.apply_ok(WORKLOAD);
    fleet.wait("the workload on every device", || {
        fleet
            .agents
            .iter()
            .all(|a| delivered_workloads(a).contains(&"by-label".to_owned()))
    });

    // The killed replica comes back; the other one is killed mid-run.
    fleet.replicas[leader].restart().unwrap();
    alive[leader] = true;
    for a in &fleet.agents {
        assert!(
            a.emit(&["event", "--reason", "AfterKill", "two"])
                .unwrap()
                .status
                .success()
        );
    }
    fleet.point_links_at(leader);
    fleet.replicas[survivor].kill9();
    alive[survivor] = false;
    fleet.wait("the restarted replica to lead", || {
        fleet.leader(&alive) == Some(leader)
    });
    fleet.wait("every device online again", || {
        DEVICES.iter().all(|d| fleet.presence(d) == "online")
    });

    // Every record exactly once: both events of every device arrive (one
    // sent before, one after a kill); stopped, each agent's queue is
    // acknowledged up to what the store holds, each sequence number once and
    // none missing.
    let store = PostgresStore::connect(&url, Default::default()).unwrap();
    let reasons = |id: &str| -> Vec<String> {
        store
            .records(&DeviceId::parse(id).unwrap(), None, 1_000_000)
            .unwrap()
            .iter()
            .filter_map(|r| match Payload::decode(&r.record.payload) {
                Ok(Payload::Event(e)) => Some(e.reason),
                _ => None,
            })
            .collect()
    };
    fleet.wait("both events of every device", || {
        DEVICES.iter().all(|id| {
            let r = reasons(id);
            r.iter().filter(|x| *x == "BeforeKill").count() == 1
                && r.iter().filter(|x| *x == "AfterKill").count() == 1
        })
    });
    for (id, agent) in DEVICES.iter().zip(fleet.agents.iter_mut()) {
        agent.stop().unwrap();
        let (next_seq, unacked) = agent_support::agent_queue(&agent.data_dir);
        let stored = store
            .records(&DeviceId::parse(id).unwrap(), None, 1_000_000)
            .unwrap();
        let seqs: Vec<u64> = stored.iter().map(|r| r.record.seq).collect();
        assert!(
            seqs[0] <= 1,
            "{id}: the first records are missing: {seqs:?}"
        );
        assert_eq!(
            seqs,
            (seqs[0]..seqs[0] + seqs.len() as u64).collect::<Vec<_>>(),
            "{id}: gaps or doubles"
        );
        assert!(
            *seqs.last().unwrap() + 1 + unacked >= next_seq,
            "{id}: records the agent saw acknowledged are missing (next {next_seq}, unacked {unacked}, stored up to {})",
            seqs.last().unwrap()
        );
        eprintln!(
            "{id}: {} records stored once each, {unacked} still queued",
            seqs.len()
        );
    }
    // A graceful stop on PostgreSQL exits cleanly (it used to panic closing
    // the pool on a runtime thread).
    let status = fleet.replicas[leader].stop().unwrap();
    assert!(
        status.success(),
        "SIGTERM of a replica: {status}; its log:\n{}",
        std::fs::read_to_string(&fleet.replicas[leader].log).unwrap_or_default()
    );
}
