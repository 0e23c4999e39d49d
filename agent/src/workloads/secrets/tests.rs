use proptest::prelude::*;
use serde_json::json;

use super::*;

#[test]
fn references_in_env_env_from_and_volumes() {
    let spec = json!({
        "initContainers": [{"envFrom": [{"secretRef": {"name": "init"}}]}],
        "containers": [{"env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}]
    });
    let (names, volumes) = referenced(&spec);
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["db", "init"]);
    assert!(!volumes);
    let spec = json!({"containers": [{}], "volumes": [
        {"name": "v", "projected": {"sources": [{"secret": {"name": "tls"}}]}}]});
    let (names, volumes) = referenced(&spec);
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["tls"]);
    assert!(volumes, "a projected Secret is a volume too");
}

#[test]
fn data_must_be_a_map_of_strings() {
    assert!(check_data(r#"{"p":"czNjcjN0"}"#).is_ok());
    assert!(check_data("{}").is_ok());
    assert!(
        check_data(r#"{"p":1}"#)
            .unwrap_err()
            .contains("map of base64")
    );
    assert!(check_data("[]").unwrap_err().contains("map of base64"));
    assert!(check_data("nope").unwrap_err().contains("not JSON"));
}

#[test]
fn inspect_lines_as_podman_4_3_prints_them() {
    let out = "db\ttrue\tabc\nmine\t\t\nodd\t<no value>\t<no value>\n\n";
    assert_eq!(
        decode_inspect(out),
        [
            ObservedSecret {
                name: "db".into(),
                managed: true,
                hash: Some("abc".into())
            },
            ObservedSecret {
                name: "mine".into(),
                managed: false,
                hash: None
            },
            ObservedSecret {
                name: "odd".into(),
                managed: false,
                hash: None
            },
        ]
    );
    assert!(inspect_format().contains(r#"index .Spec.Labels "io.flotta.agent/managed""#));
}

#[test]
fn ours_with_the_same_data_is_kept_changed_is_replaced_a_users_is_foreign() {
    let data = r#"{"p":"eA=="}"#;
    let ours = |hash: &str| ObservedSecret {
        name: "db".into(),
        managed: true,
        hash: Some(hash.into()),
    };
    assert_eq!(action("db", data, &[]), SecretAction::Create);
    assert_eq!(
        action("db", data, &[ours(&data_hash(data))]),
        SecretAction::Keep
    );
    assert_eq!(action("db", data, &[ours("old")]), SecretAction::Replace);
    let users = ObservedSecret {
        name: "db".into(),
        managed: false,
        hash: Some(data_hash(data)),
    };
    assert_eq!(action("db", data, &[users]), SecretAction::Foreign);
}

#[test]
fn the_message_gives_named_secrets_only() {
    let m = json!({"secrets": [{"name": "a", "data": "{}"}, {"name": "b"}, {"data": "{}"}, 7]});
    assert_eq!(from_message(&m).into_keys().collect::<Vec<_>>(), ["a"]);
    assert!(from_message(&json!({"secrets": null})).is_empty());
}

proptest! {
    /// Whatever podman prints, decoding neither panics nor invents names.
    #[test]
    fn decoding_any_output_is_total(out in "[a-z\t<> \n]{0,200}") {
        for s in decode_inspect(&out) {
            prop_assert!(!s.name.is_empty());
            prop_assert!(out.contains(&s.name));
        }
    }
}
