//! How the CLI reaches the admin listener: plain HTTP or TLS (our CA as the
//! only root; an operator's certificate from `issue-admin-cert` when
//! given), and a bearer token sent with every request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{HeaderValue, header};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use super::CliError;

/// Environment variable holding a bearer token for the admin listener.
pub const TOKEN_ENV: &str = "FLOTTA_ADMIN_TOKEN";

/// What the CLI presents to the admin listener.
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    /// Sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// TLS, when the listener speaks it.
    pub tls: Option<AdminTls>,
}

/// TLS to the admin listener.
#[derive(Debug, Clone)]
pub struct AdminTls {
    /// The CA certificate (PEM) the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// An operator's certificate and key (PEM files), if any.
    pub client: Option<(PathBuf, PathBuf)>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::Credentials(format!("{what} {}: {e}", path.display())))
}

impl AdminAccess {
    /// The token from `file` (first line), else from `$FLOTTA_ADMIN_TOKEN`.
    pub fn token_from(file: Option<&Path>) -> Result<Option<String>, CliError> {
        let text = match file {
            Some(f) => String::from_utf8(read(f, "token file")?)
                .map_err(|_| CliError::Credentials(format!("{} is not UTF-8", f.display())))?,
            None => match std::env::var(TOKEN_ENV) {
                Ok(t) => t,
                Err(_) => return Ok(None),
            },
        };
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.is_empty() {
            return Err(CliError::Credentials("the admin token is empty".into()));
        }
        Ok(Some(token))
    }

    /// The ureq agent: TLS as configured, the token on every request.
    pub fn agent(&self) -> Result<ureq::Agent, CliError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)));
        if let Some(tls) = &self.tls {
            let ca = Certificate::from_pem(&read(&tls.ca_file, "CA certificate")?)
                .map_err(|e| CliError::Credentials(format!("{}: {e}", tls.ca_file.display())))?;
            let mut builder = TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .root_certs(RootCerts::Specific(Arc::new(vec![ca])));
            if let Some((cert, key)) = &tls.client {
                let chain = Certificate::from_pem(&read(cert, "admin certificate")?)
                    .map_err(|e| CliError::Credentials(format!("{}: {e}", cert.display())))?;
                let key = PrivateKey::from_pem(&read(key, "admin key")?)
                    .map_err(|e| CliError::Credentials(format!("{}: {e}", key.display())))?;
                builder = builder.client_cert(Some(ClientCert::new_with_certs(&[chain], key)));
            }
            config = config.tls_config(builder.build());
        }
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                CliError::Credentials("the admin token has unusable characters".into())
            })?;
            config = config.middleware(
                move |mut req: ureq::http::Request<ureq::SendBody<'_>>,
                      next: ureq::middleware::MiddlewareNext<'_>| {
                    req.headers_mut()
                        .insert(header::AUTHORIZATION, value.clone());
                    next.handle(req)
                },
            );
        }
        Ok(config.build().into())
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}
