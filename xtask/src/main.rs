//! `cargo xtask`: build tasks (work in progress).
fn main() {}
