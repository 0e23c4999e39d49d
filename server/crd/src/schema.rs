//! Hand-written schema fragments for the few fields whose Rust type cannot express
//! the reference schema on its own.
//!
//! Flotta declares some integers with Go's `int`, for which the reference schema has
//! `type: integer` with no `format`; every fixed-width Rust integer would add one.

use schemars::{Schema, SchemaGenerator, json_schema};

/// `type: integer, minimum: 0` without a `format` (a Go `uint`-like counter).
pub(crate) fn unformatted_non_negative_integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 0 })
}

/// A list of `type: integer` items without a `format` (a Go `[]int`).
pub(crate) fn unformatted_integer_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": { "type": "integer" } })
}

/// `type: string, format: byte`: base64 text, which is how JSON carries a
/// [`k8s_openapi::ByteString`] (k8s-openapi gives that type no schema of its own).
pub(crate) fn base64_bytes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "byte" })
}
