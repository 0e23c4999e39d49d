//! Listeners: accepting, admitting and serving HTTP/1.1 connections with
//! budgets and deadlines, shared by the mTLS API and the admin listener.
//!
//! - [`class`]: what a connection counts as (device, registration, other, admin);
//! - [`budget`]: connection budgets per class and per client;
//! - [`accept`]: the accept loop, with a budget for not-yet-admitted connections;
//! - [`connection`]: serving an admitted connection with header and request deadlines;
//! - [`deadline`]: the whole-request deadline and minimum body rate;
//! - [`refuse`]: what a refused client sees (503, `Retry-After`);
//! - [`linger`]: closing without losing the response to a client still sending;
//! - [`mtls`], [`plain`], [`admin_tls`]: admission on the API (TLS handshake,
//!   certificate class) and admin (nothing to learn on loopback; TLS with an
//!   optional operator certificate otherwise) listeners.
//!
//! See server/README.md ("Connection budgets and deadlines") for the
//! defaults and their reasoning.

pub mod accept;
pub mod admin_tls;
pub mod budget;
pub mod class;
pub mod connection;
pub mod deadline;
pub mod linger;
pub mod mtls;
pub mod plain;
pub mod refuse;

pub use accept::{Admit, Admitted, Listener, serve};
pub use admin_tls::AdminTlsAdmit;
pub use budget::{Budgets, Limits, Permit, Refused};
pub use class::{Class, ClientKey, classify};
pub use connection::Timeouts;
pub use deadline::{BodyRules, BodyTimeout, TimedBody};
pub use mtls::MtlsAdmit;
pub use plain::PlainAdmit;
