//! Who may use the admin listener, and as what.
//!
//! A request is made by a [`Principal`]: the holder of a bearer token
//! (`Authorization: Bearer …`, or the console's cookie), of an admin client
//! certificate from our CA, or — only when the listener is on loopback and
//! no credential is configured — the local operator. Two roles:
//! [`AdminRole::ReadOnly`] reads, [`AdminRole::Admin`] also changes state.
//! [`required_role`] decides per request (by method, with the audit log
//! for admins only); `/healthz` and `/readyz` stay open for probes.
//! [`guard`] is the middleware that applies all of it and writes the audit
//! log.

pub mod guard;
pub mod token;

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::{HeaderMap, Method, header};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::Config;
use crate::pki::{ClientIdentity, Role};
use token::TokenTable;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminRole {
    /// Read everything; change nothing.
    ReadOnly,
    /// Read and change (apply, approve, decommission, delete, bind).
    Admin,
}

impl AdminRole {
    /// The word used in configuration, the audit log and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::ReadOnly => "read-only",
            AdminRole::Admin => "admin",
        }
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Nothing: the open loopback listener.
    Local,
    /// A configured bearer token.
    Token,
    /// An admin client certificate (its serial).
    Certificate(String),
}

impl Via {
    /// `local`, `token` or `certificate <serial>`, for the audit log.
    pub fn describe(&self) -> String {
        match self {
            Via::Local => "local".into(),
            Via::Token => "token".into(),
            Via::Certificate(serial) => format!("certificate {serial}"),
        }
    }
}

/// Who makes a request, put into its extensions by [`guard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's or certificate's name (`local` on the open listener).
    pub name: String,
    /// What it may do.
    pub role: AdminRole,
    /// How it was established.
    pub via: Via,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No credentials, or not good ones (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Good credentials without the role (403).
    #[error("{0}")]
    Forbidden(String),
}

impl Denied {
    /// Never: the same request fails the same way until the credentials change.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// The admin listener's access rules, from the configuration.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    open: bool,
    tokens: TokenTable,
    certificates: bool,
    revoked: HashSet<String>,
    clock: Arc<dyn Clock>,
}

/// Name of the console's cookie holding the bearer token.
pub const COOKIE: &str = "flotta_token";

impl AdminAuth {
    /// The rules `config` sets (see `config/admin.rs`).
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self {
            open: !config.admin_credentials_configured()
                && crate::config::is_loopback(config.admin_listen_addr),
            tokens: TokenTable::new(&config.admin_tokens),
            certificates: config.admin_client_certs,
            revoked: config.admin_revoked_serials.iter().cloned().collect(),
            clock,
        }
    }

    /// Whether requests need no credentials (loopback, none configured).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Who makes a request with these headers over a connection with this
    /// client certificate (already verified against our CA, expiry aside).
    /// A presented token is judged first: a wrong one is refused even
    /// beside a good certificate.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        certificate: Option<&ClientIdentity>,
    ) -> Result<Principal, Denied> {
        if let Some(token) = presented_token(headers)? {
            return match self.tokens.find(&token) {
                Some((name, role)) => Ok(Principal {
                    name: name.to_owned(),
                    role,
                    via: Via::Token,
                }),
                None => Err(Denied::Unauthenticated(
                    "the bearer token is not one of this server's admin tokens".into(),
                )),
            };
        }
        if let Some(identity) = certificate {
            return self.certificate(identity);
        }
        if self.open {
            return Ok(Principal {
                name: "local".into(),
                role: AdminRole::Admin,
                via: Via::Local,
            });
        }
        Err(Denied::Unauthenticated(
            "credentials required: a bearer token (Authorization: Bearer …) or an admin client certificate"
                .into(),
        ))
    }

    fn certificate(&self, identity: &ClientIdentity) -> Result<Principal, Denied> {
        let Role::Admin { name, read_only } = &identity.role else {
            return Err(Denied::Forbidden(
                "only admin certificates (flotta-server issue-admin-cert) may use the admin listener"
                    .into(),
            ));
        };
        if !self.certificates {
            return Err(Denied::Unauthenticated(
                "admin client certificates are not accepted here (admin_client_certs = false)"
                    .into(),
            ));
        }
        if identity.is_expired(self.clock.now()) {
            return Err(Denied::Unauthenticated(format!(
                "the admin certificate of {name:?} has expired"
            )));
        }
        if self.revoked.contains(&identity.serial) {
            return Err(Denied::Unauthenticated(format!(
                "the admin certificate of {name:?} (serial {}) is revoked",
                identity.serial
            )));
        }
        Ok(Principal {
            name: name.clone(),
            role: if *read_only {
                AdminRole::ReadOnly
            } else {
                AdminRole::Admin
            },
            via: Via::Certificate(identity.serial.clone()),
        })
    }
}

/// The token of `Authorization: Bearer`, else of the console's cookie.
fn presented_token(headers: &HeaderMap) -> Result<Option<String>, Denied> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| Denied::Unauthenticated("unreadable Authorization header".into()))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| {
                Denied::Unauthenticated("the Authorization header is not `Bearer <token>`".into())
            })?;
        return Ok(Some(token.trim().to_owned()));
    }
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == COOKIE
                && !v.is_empty()
            {
                return Ok(Some(v.to_owned()));
            }
        }
    }
    Ok(None)
}

/// The role a request needs: `None` for the probes, the console's sign-in
/// and sign-out and its static files; admin for the audit log and anything
/// that may change state; read-only for the rest.
pub fn required_role(method: &Method, path: &str) -> Option<AdminRole> {
    let get = matches!(*method, Method::GET | Method::HEAD);
    let post = *method == Method::POST;
    if (get && matches!(path, "/healthz" | "/readyz"))
        || ((get || post) && path == "/ui/login")
        || (post && path == "/ui/logout")
        || (get && path.starts_with("/ui/static/"))
    {
        return None;
    }
    if path == "/apis/audit" || path.starts_with("/apis/audit/") || path == "/ui/audit" {
        return Some(AdminRole::Admin);
    }
    if is_read(method) {
        Some(AdminRole::ReadOnly)
    } else {
        Some(AdminRole::Admin)
    }
}

/// Whether a method only reads (and so is not audited).
pub fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests;
