//! Label selector evaluation with Kubernetes' semantics, for matching
//! `EdgeWorkload.spec.deviceSelector` against EdgeDevice labels.
//!
//! The selector is validated the way the API machinery does it (Flotta evaluates
//! selectors with `metav1.LabelSelectorAsSelector`): keys and values must be
//! well-formed, `In`/`NotIn` need values, `Exists`/`DoesNotExist` take none, and no
//! other operator is allowed. Matching itself is kube-rs' [`Selector`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::core::{Expression, Selector, SelectorExt};

use crate::label_syntax::{validate_label_key, validate_label_value};

/// Why a label selector is malformed. Retrying never helps: the selector itself
/// must be fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// A key in `matchLabels` or `matchExpressions` is not a valid label key.
    #[error("invalid label key \"{key}\" in selector: {reason}")]
    InvalidKey {
        /// The offending key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value is not a valid label value.
    #[error("invalid label value \"{value}\" for key \"{key}\" in selector: {reason}")]
    InvalidValue {
        /// Key the value belongs to.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operator is not `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[error(
        "invalid operator \"{operator}\" for key \"{key}\" in selector: expected In, NotIn, Exists or DoesNotExist"
    )]
    UnknownOperator {
        /// Key of the requirement.
        key: String,
        /// The operator given.
        operator: String,
    },
    /// `In` or `NotIn` without values.
    #[error("operator {operator} for key \"{key}\" in selector needs at least one value")]
    MissingValues {
        /// Key of the requirement.
        key: String,
        /// `In` or `NotIn`.
        operator: &'static str,
    },
    /// `Exists` or `DoesNotExist` with values.
    #[error("operator {operator} for key \"{key}\" in selector takes no values, got {count}")]
    UnexpectedValues {
        /// Key of the requirement.
        key: String,
        /// `Exists` or `DoesNotExist`.
        operator: &'static str,
        /// How many values were given.
        count: usize,
    },
}

/// Whether `labels` satisfy `selector`: every `matchLabels` pair and every
/// `matchExpressions` requirement must hold. An empty selector matches everything.
///
/// A missing selector (`None` in an `Option<LabelSelector>`) matches nothing in
/// Kubernetes; that case is the caller's to handle.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    Ok(compile_selector(selector)?.matches(labels))
}

/// Validates `selector` once, for matching it against many label sets with
/// [`SelectorExt::matches`].
pub fn compile_selector(selector: &LabelSelector) -> Result<Selector, SelectorError> {
    let mut expressions = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        check_key(key)?;
        check_value(key, value)?;
        expressions.push(Expression::Equal(key.clone(), value.clone()));
    }
    for requirement in selector.match_expressions.iter().flatten() {
        expressions.push(compile_requirement(requirement)?);
    }
    Ok(expressions.into_iter().collect())
}

fn compile_requirement(
    requirement: &LabelSelectorRequirement,
) -> Result<Expression, SelectorError> {
    let key = &requirement.key;
    check_key(key)?;
    let values = requirement.values.as_deref().unwrap_or_default();
    match requirement.operator.as_str() {
        "In" => Ok(Expression::In(key.clone(), value_set(key, "In", values)?)),
        "NotIn" => Ok(Expression::NotIn(
            key.clone(),
            value_set(key, "NotIn", values)?,
        )),
        "Exists" => {
            no_values(key, "Exists", values)?;
            Ok(Expression::Exists(key.clone()))
        }
        "DoesNotExist" => {
            no_values(key, "DoesNotExist", values)?;
            Ok(Expression::DoesNotExist(key.clone()))
        }
        other => Err(SelectorError::UnknownOperator {
            key: key.clone(),
            operator: other.to_owned(),
        }),
    }
}

fn value_set(
    key: &str,
    operator: &'static str,
    values: &[String],
) -> Result<BTreeSet<String>, SelectorError> {
    if values.is_empty() {
        return Err(SelectorError::MissingValues {
            key: key.to_owned(),
            operator,
        });
    }
    values
        .iter()
        .map(|value| check_value(key, value).map(|()| value.clone()))
        .collect()
}

fn no_values(key: &str, operator: &'static str, values: &[String]) -> Result<(), SelectorError> {
    if values.is_empty() {
        Ok(())
    } else {
        Err(SelectorError::UnexpectedValues {
            key: key.to_owned(),
            operator,
            count: values.len(),
        })
    }
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    validate_label_key(key).map_err(|reason| SelectorError::InvalidKey {
        key: key.to_owned(),
        reason,
    })
}

fn check_value(key: &str, value: &str) -> Result<(), SelectorError> {
    validate_label_value(value).map_err(|reason| SelectorError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    })
}
