//! The flotta server as a library (work in progress).
#![forbid(unsafe_code)]
