//! Queue benchmark (work in progress).
fn main() {}
