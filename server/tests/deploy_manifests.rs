//! `deploy/kubernetes/` checked against the server it deploys: every YAML
//! document parses into its k8s-openapi type with no field left over (a
//! misspelt key fails), the ConfigMap's `server.toml` loads with the
//! server's own configuration loader, every path the configuration names
//! lies on the right volume (the CA on the Secret, read-only; `data_dir` on
//! the emptyDir, writable; the file itself on its ConfigMap), the ports are
//! the configuration's listeners and the Services reach them, the RBAC rules
//! are exactly `cluster::access` (no more, no less), the ServiceAccount is
//! the one the Deployment runs as and the binding binds, and the
//! kustomization lists every manifest.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use flotta_server::cluster::access::{ACCESS, DISCOVERY};
use flotta_server::config::{Config, ObjectsBackend, StoreBackend};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Secret, Service, ServiceAccount, Volume,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The manifests' directory.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Files an operator applies by hand (examples), never listed in the kustomization.
fn is_example(name: &str) -> bool {
    name.ends_with(".example.yaml")
}

/// Every manifest: parsed, typed, and round-tripped.
#[derive(Default)]
struct Manifests {
    files: BTreeSet<String>,
    namespaces: Vec<Namespace>,
    accounts: Vec<ServiceAccount>,
    roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    configmaps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    budgets: Vec<PodDisruptionBudget>,
    /// (file, kind, namespace) of every namespaced object.
    namespaced: Vec<(String, String, Option<String>)>,
}

/// `document` as `T`, which must give back every field it was given.
fn typed<T: DeserializeOwned + serde::Serialize>(file: &str, document: &Value) -> T {
    let object: T = serde_json::from_value(document.clone())
        .unwrap_or_else(|e| panic!("{file}: not a valid {}: {e}", document["kind"]));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        &back, document,
        "{file}: fields the type does not know (misspelt?) or values it changed"
    );
    object
}

fn load() -> Manifests {
    let mut m = Manifests::default();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") || name == "kustomization.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let namespace = value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match kind.as_str() {
                "Namespace" => m.namespaces.push(typed(&name, &value)),
                "ClusterRole" => m.roles.push(typed(&name, &value)),
                "ClusterRoleBinding" => m.bindings.push(typed(&name, &value)),
                _ => {
                    m.namespaced.push((name.clone(), kind.clone(), namespace));
                    match kind.as_str() {
                        "ServiceAccount" => m.accounts.push(typed(&name, &value)),
                        "ConfigMap" => m.configmaps.push(typed(&name, &value)),
                        "Secret" => m.secrets.push(typed(&name, &value)),
                        "Deployment" => m.deployments.push(typed(&name, &value)),
                        "Service" => m.services.push(typed(&name, &value)),
                        "PodDisruptionBudget" => m.budgets.push(typed(&name, &value)),
                        other => panic!("{name}: kind {other:?} is not checked by this test"),
                    }
                }
            }
        }
        m.files.insert(name);
    }
    m
}

fn one<'a, T>(items: &'a [T], what: &str) -> &'a T {
    assert_eq!(items.len(), 1, "exactly one {what}");
    &items[0]
}

fn pod(m: &Manifests) -> &PodSpec {
    let d = one(&m.deployments, "Deployment");
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

/// The labels of the Deployment's pod template.
fn template_labels(m: &Manifests) -> &BTreeMap<String, String> {
    let d = one(&m.deployments, "Deployment");
    let template = &d.spec.as_ref().unwrap().template;
    template.metadata.as_ref().unwrap().labels.as_ref().unwrap()
}

fn container(m: &Manifests) -> &Container {
    let p = pod(m);
    assert_eq!(p.containers.len(), 1, "one container");
    &p.containers[0]
}

fn volume<'a>(m: &'a Manifests, name: &str) -> &'a Volume {
    let volumes = pod(m).volumes.as_ref().unwrap();
    volumes.iter().find(|v| v.name == name).unwrap()
}

/// The `--config` file the container is started with.
fn config_path(m: &Manifests) -> PathBuf {
    let args = container(m).args.as_ref().unwrap();
    assert_eq!(args[0], "serve");
    let at = args.iter().position(|a| a == "--config").unwrap();
    PathBuf::from(&args[at + 1])
}

/// The ConfigMap's server.toml, loaded by the server's loader with the
/// PostgreSQL URL the Deployment's environment adds (`FLOTTA_SERVER_POSTGRES_URL`).
fn config(m: &Manifests) -> Config {
    let cm = one(&m.configmaps, "ConfigMap");
    let key = config_path(m)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let toml = &cm.data.as_ref().unwrap()[&key];
    assert!(
        !toml.contains("postgres_url"),
        "the database URL (a password) belongs in the Secret"
    );
    Config::from_toml_str(&format!(
        "{toml}\npostgres_url = \"postgres://flotta@db.example/flotta\"\n"
    ))
    .unwrap_or_else(|e| panic!("the ConfigMap's {key}: {e}"))
}

/// The volume mount `path` lies under (the longest), with its volume.
fn mount_of<'a>(m: &'a Manifests, path: &Path) -> (&'a Volume, bool, PathBuf) {
    let mounts = container(m).volume_mounts.as_ref().unwrap();
    let mount = mounts
        .iter()
        .filter(|vm| path.starts_with(&vm.mount_path))
        .max_by_key(|vm| vm.mount_path.len())
        .unwrap_or_else(|| panic!("{} is on no volume", path.display()));
    let relative = path.strip_prefix(&mount.mount_path).unwrap().to_owned();
    (
        volume(m, &mount.name),
        mount.read_only == Some(true),
        relative,
    )
}

#[test]
fn every_document_parses_into_its_type_and_the_kustomization_lists_every_file() {
    let m = load();
    let k: Value =
        serde_norway::from_str(&std::fs::read_to_string(dir().join("kustomization.yaml")).unwrap())
            .unwrap();
    assert_eq!(k["kind"], "Kustomization");
    let listed: BTreeSet<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let applied: BTreeSet<String> = m.files.iter().filter(|f| !is_example(f)).cloned().collect();
    assert_eq!(listed, applied, "kustomization.yaml resources");
    // One namespace, and everything namespaced is in it.
    let ns = one(&m.namespaces, "Namespace")
        .metadata
        .name
        .clone()
        .unwrap();
    for (file, kind, namespace) in &m.namespaced {
        assert_eq!(namespace.as_deref(), Some(ns.as_str()), "{file}: {kind}");
    }
}

#[test]
fn the_configuration_is_the_servers_and_its_paths_are_on_the_right_volumes() {
    let m = load();
    let c = config(&m);
    assert_eq!(c.objects, ObjectsBackend::Kubernetes);
    assert_eq!(c.store, StoreBackend::Postgres);
    assert_eq!(c.kubeconfig_path, None, "in-cluster service account");

    // The file itself: on the ConfigMap's volume, under its key.
    let (v, ro, rel) = mount_of(&m, &config_path(&m));
    let cm = one(&m.configmaps, "ConfigMap");
    assert_eq!(
        v.config_map.as_ref().unwrap().name,
        cm.metadata.name.clone().unwrap()
    );
    assert!(
        ro && cm
            .data
            .as_ref()
            .unwrap()
            .contains_key(&*rel.to_string_lossy())
    );

    // The CA: both files on the CA Secret's volume, read-only.
    let ca = c
        .pki_settings()
        .ca_files
        .expect("ca_cert_file and ca_key_file");
    for (file, key) in [(&ca.cert, "ca.pem"), (&ca.key, "ca.key")] {
        let (v, ro, rel) = mount_of(&m, file);
        let secret = v.secret.as_ref().expect("the CA comes from a Secret");
        assert_eq!(secret.secret_name.as_deref(), Some("flotta-ca"));
        assert!(ro, "{} read-only", file.display());
        assert_eq!(
            rel,
            Path::new(key),
            "the key kubectl create secret --from-file gives"
        );
    }
    // data_dir: the emptyDir, writable.
    let (v, ro, rel) = mount_of(&m, &c.data_dir);
    assert!(v.empty_dir.is_some() && !ro && rel.as_os_str().is_empty());

    // Every other path-valued key that is set lies on some volume.
    let toml: toml::Table = toml::from_str(&c.to_toml()).unwrap();
    for (key, value) in &toml {
        let paths: Vec<&str> = match value {
            toml::Value::String(s) => vec![s.as_str()],
            toml::Value::Array(a) => a.iter().filter_map(toml::Value::as_str).collect(),
            _ => continue,
        };
        if ["_file", "_files", "_path", "_dir"]
            .iter()
            .any(|s| key.ends_with(s))
        {
            for p in paths {
                mount_of(&m, Path::new(p));
            }
        }
    }

    // The database URL from the Secret the example makes.
    let env = container(&m).env.as_ref().unwrap();
    let url = env
        .iter()
        .find(|e| e.name == "FLOTTA_SERVER_POSTGRES_URL")
        .expect("FLOTTA_SERVER_POSTGRES_URL");
    let key_ref = url
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("from a Secret");
    let example = one(&m.secrets, "example Secret");
    assert_eq!(Some(key_ref.name.clone()), example.metadata.name);
    let data = example.string_data.as_ref().unwrap();
    assert!(data[&key_ref.key].parse::<postgres::Config>().is_ok());
}

/// (name, port, protocol) of the listeners a Service should reach.
fn listeners(c: &Config) -> BTreeSet<(String, i32, String)> {
    let mut out = BTreeSet::new();
    let mut add = |name: &str, addr: SocketAddr, protocol: &str| {
        assert!(
            addr.ip().is_unspecified(),
            "{name} on {addr}: not reachable"
        );
        out.insert((name.into(), i32::from(addr.port()), protocol.into()));
    };
    add("api", c.listen_addr, "TCP");
    if let Some(a) = c.udp_listen_addr {
        add("frames", a, "UDP");
    }
    if let Some(a) = c.webhook_listen_addr {
        add("webhook", a, "TCP");
    }
    out
}

#[test]
fn the_ports_are_the_listeners_and_the_services_reach_them() {
    let m = load();
    let c = config(&m);
    assert!(
        c.admin_listen_addr.ip().is_loopback(),
        "the admin listener has no authentication: loopback only"
    );
    let ports: BTreeSet<(String, i32, String)> = container(&m)
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap(),
                p.container_port,
                p.protocol.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, listeners(&c), "container ports");

    let labels = template_labels(&m);
    let mut reached = BTreeSet::new();
    for s in &m.services {
        let spec = s.spec.as_ref().unwrap();
        let selector = spec.selector.as_ref().unwrap();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
        assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
        for p in spec.ports.as_ref().unwrap() {
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let target = ports
                .iter()
                .find(|(name, port, proto)| {
                    *proto == protocol
                        && match &p.target_port {
                            Some(IntOrString::String(n)) => n == name,
                            Some(IntOrString::Int(i)) => i == port,
                            None => p.port == *port,
                        }
                })
                .unwrap_or_else(|| panic!("Service port {p:?} reaches no container port"));
            reached.insert(target.clone());
        }
    }
    assert_eq!(reached, ports, "every listener is behind a Service");
}

/// (group, resource, verb) triples.
fn triples<'a>(
    groups: impl IntoIterator<Item = &'a str>,
    resources: &'a [String],
    verbs: &'a [String],
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for g in groups {
        for r in resources {
            for v in verbs {
                out.push((g.to_owned(), r.clone(), v.clone()));
            }
        }
    }
    out
}

#[test]
fn rbac_is_exactly_what_the_server_does_and_binds_its_account() {
    let m = load();
    let role = one(&m.roles, "ClusterRole");
    let mut granted = BTreeSet::new();
    let mut urls = BTreeSet::new();
    for rule in role.rules.as_ref().unwrap() {
        if let Some(u) = &rule.non_resource_urls {
            assert_eq!(rule.verbs, ["get"], "discovery is read");
            urls.extend(u.iter().cloned());
            continue;
        }
        let groups = rule.api_groups.as_ref().unwrap();
        let resources = rule.resources.as_ref().unwrap();
        assert!(rule.resource_names.is_none());
        for t in triples(groups.iter().map(String::as_str), resources, &rule.verbs) {
            assert!(granted.insert(t.clone()), "granted twice: {t:?}");
        }
    }
    let mut needed = BTreeSet::new();
    for a in ACCESS {
        let resources: Vec<String> = a.resources.iter().map(|r| (*r).to_owned()).collect();
        let verbs: Vec<String> = a.verbs.iter().map(|v| v.as_str().to_owned()).collect();
        needed.extend(triples([a.group], &resources, &verbs));
    }
    assert_eq!(
        granted, needed,
        "ClusterRole rules vs cluster::access::ACCESS"
    );
    let discovery: BTreeSet<String> = DISCOVERY.iter().map(|u| (*u).to_owned()).collect();
    assert_eq!(
        urls, discovery,
        "nonResourceURLs vs cluster::access::DISCOVERY"
    );

    let account = one(&m.accounts, "ServiceAccount");
    let binding = one(&m.bindings, "ClusterRoleBinding");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(binding.role_ref.name.clone()), role.metadata.name);
    let subjects = binding.subjects.as_ref().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(subjects[0].name.clone()), account.metadata.name);
    assert_eq!(subjects[0].namespace, account.metadata.namespace);
    assert_eq!(pod(&m).service_account_name, account.metadata.name);
    assert_ne!(pod(&m).automount_service_account_token, Some(false));
}

#[test]
fn the_pod_runs_the_image_unprivileged_with_two_replicas_and_probes() {
    let m = load();
    let d = one(&m.deployments, "Deployment");
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let c = container(&m);
    assert_eq!(
        c.image.as_deref(),
        Some(format!("flotta-server:{}", env!("CARGO_PKG_VERSION")).as_str()),
        "the tag `cargo xtask container` builds"
    );
    let p = pod(&m);
    let pod_sc = p.security_context.as_ref().unwrap();
    assert_eq!(
        pod_sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.run_as_user, Some(65532), "the Containerfile's USER");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let drop = sc.capabilities.as_ref().unwrap().drop.clone().unwrap();
    assert_eq!(drop, ["ALL"]);
    let limits = c.resources.as_ref().unwrap();
    assert!(limits.requests.is_some() && limits.limits.is_some());
    // Probes run the binary against the loopback admin listener.
    let config = config_path(&m).display().to_string();
    for (probe, ready) in [
        (&c.startup_probe, false),
        (&c.liveness_probe, false),
        (&c.readiness_probe, true),
    ] {
        let command = probe
            .as_ref()
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.clone())
            .unwrap();
        let mut want = vec!["/flotta-server", "--config", config.as_str(), "health"];
        if ready {
            want.push("--ready");
        }
        assert_eq!(command, want);
    }
    assert!(
        p.termination_grace_period_seconds.unwrap() > 5,
        "the 5 s drain fits"
    );
    let spread = p.topology_spread_constraints.as_ref().unwrap();
    assert!(
        spread
            .iter()
            .any(|t| t.topology_key == "kubernetes.io/hostname")
    );
    // The CA Secret's files: readable by the pod's group only.
    let ca = volume(&m, "ca").secret.as_ref().unwrap();
    assert_eq!(ca.default_mode, Some(0o440));
    assert_eq!(pod_sc.fs_group, Some(65532));
    let budget = one(&m.budgets, "PodDisruptionBudget");
    let selector: BTreeMap<String, String> = budget
        .spec
        .as_ref()
        .unwrap()
        .selector
        .as_ref()
        .unwrap()
        .match_labels
        .clone()
        .unwrap();
    let labels = template_labels(&m);
    assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
}
