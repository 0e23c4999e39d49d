//! The flotta server as a library: CA, mTLS Edge API (Flotta's routes and
//! our compact batch route), embedded store and authorisation.
//!
//! The `flotta-server` binary is a thin command line over this crate; the
//! end-to-end tests start servers in-process with [`testing::spawn`].
#![forbid(unsafe_code)]

pub mod admin_auth;
pub mod api;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod controller;
pub mod decode;
pub mod device_id;
pub mod frames;
pub mod leader;
pub mod link_stats;
pub mod links;
pub mod listener;
pub mod lorawan;
pub mod metrics;
pub mod models;
pub mod objects;
pub mod pki;
pub mod provision;
pub mod retention;
pub mod rock7;
pub mod server;
pub mod service;
pub mod store;
pub mod testing;
pub mod tls;
pub mod warning;
