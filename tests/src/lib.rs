//! Harness for flotta's end-to-end tests (real server, real agents, emulated links).
#![forbid(unsafe_code)]
