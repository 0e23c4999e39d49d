//! Admission on the plain-HTTP admin listener: nothing to learn, every
//! connection is of the admin class (the listener belongs on loopback).

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::accept::{Admit, Admitted};
use super::class::Class;

/// Admits admin connections as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainAdmit;

impl Admit for PlainAdmit {
    type Io = TcpStream;
    type Extension = ();

    async fn admit(&self, tcp: TcpStream, _peer: SocketAddr) -> Option<Admitted<TcpStream, ()>> {
        Some(Admitted {
            io: tcp,
            class: Class::Admin,
            client: None,
            extension: (),
        })
    }

    fn timed_out(&self, peer: SocketAddr) {
        tracing::debug!(%peer, "admin connection not admitted in time");
    }
}
