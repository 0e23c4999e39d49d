//! A structural validator: checks an object against a CRD `openAPIV3Schema` the
//! way the API server would before storing it.
//!
//! Besides types, enums, bounds and required fields it reports every field the
//! schema does not declare, because the API server would silently prune it: a
//! manifest "applies unchanged" only when nothing is reported.

use serde_json::Value;

/// Every problem found in `object`, as `path: what`.
pub fn validate(object: &Value, root_schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check(object, root_schema, "", &mut problems);
    problems
}

fn check(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    // The API server validates `metadata` of the root object itself.
    if path == ".metadata" {
        return;
    }
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            problems.push(format!("{path}: null where the schema allows no null"));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            problems.push(format!(
                "{path}: expected an integer or a string, got {value}"
            ));
        }
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        problems.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(n) = value.as_f64()
        && (number("minimum").is_some_and(|min| n < min)
            || number("maximum").is_some_and(|max| n > max))
    {
        problems.push(format!("{path}: {n} is out of bounds"));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => check_object(value, schema, path, problems),
        Some("array") => match value.as_array() {
            Some(items) => {
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    problems.push(format!("{path}: fewer than {min} items"));
                }
                for (i, item) in items.iter().enumerate() {
                    check(item, &schema["items"], &format!("{path}[{i}]"), problems);
                }
            }
            None => problems.push(format!("{path}: expected an array, got {value}")),
        },
        Some("string") if !value.is_string() => {
            problems.push(format!("{path}: expected a string, got {value}"));
        }
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            problems.push(format!("{path}: expected an integer, got {value}"));
        }
        Some("number") if !value.is_number() => {
            problems.push(format!("{path}: expected a number, got {value}"));
        }
        Some("boolean") if !value.is_boolean() => {
            problems.push(format!("{path}: expected a boolean, got {value}"));
        }
        _ => {}
    }
}

fn check_object(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(fields) = value.as_object() else {
        problems.push(format!("{path}: expected an object, got {value}"));
        return;
    };
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().unwrap_or_default();
        if !fields.contains_key(name) {
            problems.push(format!("{path}: required field {name} is missing"));
        }
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (name, child) in fields {
        let child_path = format!("{path}.{name}");
        match (properties.and_then(|p| p.get(name)), additional) {
            (Some(child_schema), _) => check(child, child_schema, &child_path, problems),
            (None, Some(child_schema)) if child_schema.is_object() => {
                check(child, child_schema, &child_path, problems);
            }
            _ => problems.push(format!("{child_path}: not in the schema, would be pruned")),
        }
    }
}
