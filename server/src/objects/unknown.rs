//! Unknown fields of applied manifests, found and handled as the Kubernetes
//! API server does with server-side field validation.
//!
//! Deserialising into the `flotta-crd` types drops every key the types do not
//! know; [`deserialize_noting_unknown`] notes each dropped key's path (with
//! `serde_ignored`) in kube's spelling: `spec.foo`,
//! `spec.pod.spec.containers[0].foo`. Maps (labels, annotations, ...) keep
//! every key, so nothing in them is ever unknown. [`FieldValidation`] says
//! what to do about them: refuse the object, warn, or drop them silently.
//!
//! Limit: keys left over by a `#[serde(flatten)]`ed *struct* are dropped by
//! serde itself without passing the ignoring deserialiser, so they are not
//! seen; the Flotta types and k8s-openapi's use no such flatten.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// What to do with fields the schema does not know (Kubernetes'
/// `fieldValidation` query parameter; kubectl's `--validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Refuse the request (400), naming every unknown field.
    Strict,
    /// Store the object and warn once per unknown field (the API server's
    /// default).
    #[default]
    Warn,
    /// Drop unknown fields silently.
    Ignore,
}

/// A `fieldValidation` or `--validate` value that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldValidationError {
    /// Not `Strict`, `Warn` or `Ignore` (the query parameter).
    #[error(
        "fieldValidation: Unsupported value: \"{0}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
    )]
    Query(String),
    /// Not one of kubectl's `--validate` values.
    #[error(
        "invalid --validate value \"{0}\": must be one of strict (or true), warn, ignore (or false)"
    )]
    Flag(String),
}

impl FieldValidation {
    /// The `fieldValidation` query parameter's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldValidation::Strict => "Strict",
            FieldValidation::Warn => "Warn",
            FieldValidation::Ignore => "Ignore",
        }
    }

    /// kubectl's `--validate` value: `strict` (or `true`), `warn`, `ignore`
    /// (or `false`), in any case.
    pub fn from_flag(flag: &str) -> Result<Self, FieldValidationError> {
        match flag.to_ascii_lowercase().as_str() {
            "strict" | "true" => Ok(FieldValidation::Strict),
            "warn" => Ok(FieldValidation::Warn),
            "ignore" | "false" => Ok(FieldValidation::Ignore),
            _ => Err(FieldValidationError::Flag(flag.to_owned())),
        }
    }
}

/// The query parameter: exactly `Strict`, `Warn` or `Ignore`, as the API
/// server takes it.
impl FromStr for FieldValidation {
    type Err = FieldValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Strict" => Ok(FieldValidation::Strict),
            "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            _ => Err(FieldValidationError::Query(s.to_owned())),
        }
    }
}

/// kube's text for one unknown field: `unknown field "spec.foo"`.
pub fn unknown_field_message(path: &str) -> String {
    format!("unknown field \"{path}\"")
}

/// Deserialise `value` into `T`, returning the paths of the keys `T` dropped,
/// sorted. Errors carry the path of the offending value.
pub fn deserialize_noting_unknown<T: DeserializeOwned>(
    value: Value,
) -> Result<(T, Vec<String>), serde_path_to_error::Error<serde_json::Error>> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(kube_path(&path));
    let noting = serde_ignored::Deserializer::new(value, &mut note);
    let typed = serde_path_to_error::deserialize(noting)?;
    unknown.sort();
    Ok((typed, unknown))
}

/// `spec.containers[0].foo`: map keys joined by `.`, list indices in `[]`;
/// `Option` and newtype layers add nothing.
fn kube_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let mut steps = Vec::new();
    let mut at = path;
    loop {
        match at {
            Path::Root => break,
            Path::Seq { parent, index } => {
                steps.push(Step::Index(*index));
                at = parent;
            }
            Path::Map { parent, key } => {
                steps.push(Step::Key(key));
                at = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => at = parent,
        }
    }
    let mut out = String::new();
    for step in steps.iter().rev() {
        // Writing to a String cannot fail.
        let _ = match step {
            Step::Index(i) => write!(out, "[{i}]"),
            Step::Key(k) if out.is_empty() => write!(out, "{k}"),
            Step::Key(k) => write!(out, ".{k}"),
        };
    }
    out
}

enum Step<'a> {
    Index(usize),
    Key(&'a str),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        spec: Option<Spec>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Spec {
        name: String,
        containers: Vec<Container>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        wrapped: Option<Wrapped>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Container {
        image: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Wrapped(Container);

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct WithExtra {
        known: u32,
        #[serde(flatten)]
        extra: BTreeMap<String, Value>,
    }

    fn unknown<T: DeserializeOwned>(v: Value) -> Vec<String> {
        deserialize_noting_unknown::<T>(v).unwrap().1
    }

    #[test]
    fn nested_objects_arrays_and_newtypes_give_kube_paths() {
        let v = json!({
            "top": 1,
            "spec": {
                "name": "x", "foo": {"deep": true},
                "containers": [{"image": "a"}, {"image": "b", "bar": [1, 2]}],
                "wrapped": {"image": "c", "baz": null}
            }
        });
        assert_eq!(
            unknown::<Outer>(v),
            [
                "spec.containers[1].bar",
                "spec.foo",
                "spec.wrapped.baz",
                "top"
            ]
        );
    }

    #[test]
    fn map_keys_are_never_unknown() {
        let v = json!({"spec": {"name": "x", "containers": [],
                                "labels": {"anything": "goes", "a.b/c": "d"}}});
        assert_eq!(unknown::<Outer>(v), Vec::<String>::new());
    }

    #[test]
    fn flatten_into_a_map_keeps_every_key() {
        let v = json!({"known": 1, "other": {"x": 1}});
        let (typed, unknown) = deserialize_noting_unknown::<WithExtra>(v).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(typed.extra["other"], json!({"x": 1}));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct FlatStruct {
        known: u32,
        #[serde(flatten)]
        inner: Container,
    }

    #[test]
    fn flatten_of_a_struct_hides_its_leftovers() {
        // The documented limit: serde drops what a flattened struct leaves
        // over without asking the deserialiser. None of our types does this.
        let v = json!({"known": 1, "image": "a", "leftover": 2});
        assert_eq!(unknown::<FlatStruct>(v), Vec::<String>::new());
    }

    #[test]
    fn errors_keep_their_path() {
        let v = json!({"spec": {"name": "x", "containers": [{"image": 3}]}});
        let err = deserialize_noting_unknown::<Outer>(v).unwrap_err();
        assert_eq!(err.path().to_string(), "spec.containers[0].image");
    }

    #[test]
    fn query_values_are_exact_and_flags_follow_kubectl() {
        assert_eq!("Strict".parse(), Ok(FieldValidation::Strict));
        assert_eq!("Warn".parse(), Ok(FieldValidation::Warn));
        assert_eq!("Ignore".parse(), Ok(FieldValidation::Ignore));
        assert!("strict".parse::<FieldValidation>().is_err());
        for (flag, want) in [
            ("strict", FieldValidation::Strict),
            ("true", FieldValidation::Strict),
            ("warn", FieldValidation::Warn),
            ("ignore", FieldValidation::Ignore),
            ("false", FieldValidation::Ignore),
            ("Strict", FieldValidation::Strict),
        ] {
            assert_eq!(FieldValidation::from_flag(flag), Ok(want), "{flag}");
            assert_eq!(want.as_str().parse(), Ok(want));
        }
        assert!(FieldValidation::from_flag("maybe").is_err());
        assert_eq!(FieldValidation::default(), FieldValidation::Warn);
    }
}
