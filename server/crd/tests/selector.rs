//! `selector_matches`: Kubernetes label-selector semantics, checked on examples
//! and on properties that must hold for any labels.

use std::collections::BTreeMap;

use flotta_crd::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement,
};
use flotta_crd::selector::compile_selector;
use flotta_crd::{SelectorError, selector_matches};
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn requirement(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: values.map(|vs| vs.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn expressions(requirements: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(requirements),
        match_labels: None,
    }
}

fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_expressions: None,
        match_labels: Some(labels(pairs)),
    }
}

fn device() -> BTreeMap<String, String> {
    labels(&[
        ("app", "camera"),
        ("device.cpu-architecture", "aarch64"),
        ("device.hostname", "edge-01"),
        ("flotta/member-of", "cameras"),
    ])
}

#[test]
fn empty_selector_matches_everything() {
    let empty = LabelSelector::default();
    assert_eq!(selector_matches(&empty, &device()), Ok(true));
    assert_eq!(selector_matches(&empty, &BTreeMap::new()), Ok(true));
    let empty_lists = LabelSelector {
        match_expressions: Some(vec![]),
        match_labels: Some(BTreeMap::new()),
    };
    assert_eq!(selector_matches(&empty_lists, &BTreeMap::new()), Ok(true));
}

#[test]
fn match_labels_need_every_pair() {
    let cases = [
        (&[("app", "camera")][..], true),
        (
            &[("app", "camera"), ("device.cpu-architecture", "aarch64")][..],
            true,
        ),
        (
            &[("app", "camera"), ("device.cpu-architecture", "x86_64")][..],
            false,
        ),
        (&[("site", "lab")][..], false),
        (&[("app", "")][..], false),
    ];
    for (pairs, want) in cases {
        assert_eq!(
            selector_matches(&match_labels(pairs), &device()),
            Ok(want),
            "{pairs:?}"
        );
    }
}

#[test]
fn operators_follow_kubernetes() {
    let cases = [
        (requirement("app", "In", Some(&["camera", "sensor"])), true),
        (requirement("app", "In", Some(&["sensor"])), false),
        (requirement("site", "In", Some(&["lab"])), false),
        (requirement("app", "NotIn", Some(&["sensor"])), true),
        (requirement("app", "NotIn", Some(&["camera"])), false),
        // A missing key is "not in" any set.
        (requirement("site", "NotIn", Some(&["lab"])), true),
        (requirement("device.hostname", "Exists", None), true),
        (requirement("site", "Exists", Some(&[])), false),
        (requirement("site", "DoesNotExist", None), true),
        (requirement("app", "DoesNotExist", None), false),
    ];
    for (req, want) in cases {
        let desc = format!("{} {} {:?}", req.key, req.operator, req.values);
        assert_eq!(
            selector_matches(&expressions(vec![req]), &device()),
            Ok(want),
            "{desc}"
        );
    }
}

#[test]
fn match_labels_and_expressions_are_anded() {
    let mut selector = match_labels(&[("app", "camera")]);
    selector.match_expressions = Some(vec![requirement("site", "DoesNotExist", None)]);
    assert_eq!(selector_matches(&selector, &device()), Ok(true));
    let mut in_lab = device();
    in_lab.insert("site".into(), "lab".into());
    assert_eq!(selector_matches(&selector, &in_lab), Ok(false));
    let mut sensor = device();
    sensor.insert("app".into(), "sensor".into());
    assert_eq!(selector_matches(&selector, &sensor), Ok(false));
}

#[test]
fn malformed_selectors_are_errors() {
    let cases = [
        (
            expressions(vec![requirement("cpu", "Gt", Some(&["2"]))]),
            SelectorError::UnknownOperator {
                key: "cpu".into(),
                operator: "Gt".into(),
            },
        ),
        (
            expressions(vec![requirement("app", "in", Some(&["camera"]))]),
            SelectorError::UnknownOperator {
                key: "app".into(),
                operator: "in".into(),
            },
        ),
        (
            expressions(vec![requirement("app", "In", None)]),
            SelectorError::MissingValues {
                key: "app".into(),
                operator: "In",
            },
        ),
        (
            expressions(vec![requirement("app", "NotIn", Some(&[]))]),
            SelectorError::MissingValues {
                key: "app".into(),
                operator: "NotIn",
            },
        ),
        (
            expressions(vec![requirement("app", "Exists", Some(&["camera"]))]),
            SelectorError::UnexpectedValues {
                key: "app".into(),
                operator: "Exists",
                count: 1,
            },
        ),
        (
            expressions(vec![requirement("app", "DoesNotExist", Some(&["a", "b"]))]),
            SelectorError::UnexpectedValues {
                key: "app".into(),
                operator: "DoesNotExist",
                count: 2,
            },
        ),
    ];
    for (selector, want) in cases {
        assert_eq!(selector_matches(&selector, &device()), Err(want));
    }
    let invalid_key = selector_matches(&match_labels(&[("bad key", "x")]), &device());
    assert!(
        matches!(invalid_key, Err(SelectorError::InvalidKey { ref key, .. }) if key == "bad key"),
        "{invalid_key:?}"
    );
    let invalid_value = selector_matches(
        &expressions(vec![requirement("app", "NotIn", Some(&["not valid!"]))]),
        &device(),
    );
    assert!(
        matches!(invalid_value, Err(SelectorError::InvalidValue { ref value, .. }) if value == "not valid!"),
        "{invalid_value:?}"
    );
}

#[test]
fn errors_explain_themselves() {
    let err = selector_matches(
        &expressions(vec![requirement("app", "In", None)]),
        &device(),
    )
    .expect_err("In without values");
    assert_eq!(
        err.to_string(),
        "operator In for key \"app\" in selector needs at least one value"
    );
}

// Generators of well-formed label keys and values.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?",
        "[a-z]{1,4}(\\.[a-z]{1,4})?/[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof!["", "[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?"]
}

fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(key(), value(), 0..8)
}

fn any_requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
    let values = prop::collection::vec(value(), 1..4);
    (
        key(),
        prop_oneof![
            Just("In"),
            Just("NotIn"),
            Just("Exists"),
            Just("DoesNotExist")
        ],
        values,
    )
        .prop_map(|(key, operator, values)| {
            let needs_values = matches!(operator, "In" | "NotIn");
            LabelSelectorRequirement {
                key,
                operator: operator.to_owned(),
                values: needs_values.then_some(values),
            }
        })
}

proptest! {
    /// Any subset of a device's own labels selects it.
    #[test]
    fn own_labels_select_the_device(labels in label_set(), keep in prop::collection::vec(any::<bool>(), 8)) {
        let subset: BTreeMap<String, String> = labels
            .iter()
            .zip(keep.iter().cycle())
            .filter(|(_, keep)| **keep)
            .map(|((k, v), _)| (k.clone(), v.clone()))
            .collect();
        let selector = LabelSelector { match_labels: Some(subset), match_expressions: None };
        prop_assert_eq!(selector_matches(&selector, &labels), Ok(true));
    }

    /// `matchLabels {k: v}` means exactly `k In (v)`.
    #[test]
    fn match_label_equals_in_with_one_value(labels in label_set(), k in key(), v in value()) {
        let by_label = LabelSelector { match_labels: Some([(k.clone(), v.clone())].into()), match_expressions: None };
        let by_in = expressions(vec![LabelSelectorRequirement { key: k.clone(), operator: "In".into(), values: Some(vec![v.clone()]) }]);
        let expected = labels.get(&k) == Some(&v);
        prop_assert_eq!(selector_matches(&by_label, &labels), Ok(expected));
        prop_assert_eq!(selector_matches(&by_in, &labels), Ok(expected));
    }

    /// `NotIn` is the negation of `In` when the key is present, and true when it
    /// is absent; `DoesNotExist` is the negation of `Exists`.
    #[test]
    fn negated_operators_complement(labels in label_set(), k in key(), vs in prop::collection::vec(value(), 1..4)) {
        let with = |operator: &str, values: Option<Vec<String>>| {
            selector_matches(&expressions(vec![LabelSelectorRequirement { key: k.clone(), operator: operator.into(), values }]), &labels)
        };
        let present = labels.contains_key(&k);
        let is_in = with("In", Some(vs.clone()))?;
        let not_in = with("NotIn", Some(vs.clone()))?;
        prop_assert_eq!(not_in, !present || !is_in);
        prop_assert_eq!(is_in, present && vs.contains(&labels[&k]));
        prop_assert_eq!(with("Exists", None)?, present);
        prop_assert_eq!(with("DoesNotExist", None)?, !present);
    }

    /// A selector matches exactly when each of its requirements does.
    #[test]
    fn requirements_are_anded(labels in label_set(), reqs in prop::collection::vec(any_requirement(), 0..6)) {
        let all = selector_matches(&expressions(reqs.clone()), &labels)?;
        let mut each = true;
        for req in reqs {
            each &= selector_matches(&expressions(vec![req]), &labels)?;
        }
        prop_assert_eq!(all, each);
    }

    /// Arbitrary text never panics; a compiled selector agrees with the one-shot
    /// function.
    #[test]
    fn arbitrary_input_never_panics(
        key in "\\PC{0,20}", operator in "\\PC{0,12}", values in prop::option::of(prop::collection::vec("\\PC{0,10}", 0..3)),
        labels in prop::collection::btree_map("\\PC{0,10}", "\\PC{0,10}", 0..4),
    ) {
        let selector = expressions(vec![LabelSelectorRequirement { key, operator, values }]);
        let one_shot = selector_matches(&selector, &labels);
        match compile_selector(&selector) {
            Ok(compiled) => {
                use flotta_crd::kube::core::SelectorExt;
                prop_assert_eq!(one_shot, Ok(compiled.matches(&labels)));
            }
            Err(err) => {
                prop_assert!(!err.to_string().is_empty());
                prop_assert_eq!(one_shot, Err(err));
            }
        }
    }
}
