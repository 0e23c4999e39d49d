//! Durable on-disk queue (work in progress).
