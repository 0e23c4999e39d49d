//! Signing in to the console with a bearer token: `GET /ui/login` shows a
//! form, `POST /ui/login` checks the token against the configured ones and
//! keeps it in an HttpOnly, SameSite=Strict cookie (Secure over TLS) for
//! twelve hours; `POST /ui/logout` forgets it. An operator with a client
//! certificate is signed in by the certificate and needs neither.

use axum::Extension;
use axum::extract::{Form, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, page};
use crate::admin_auth::{AdminAuth, COOKIE};

/// How long the cookie lasts.
pub const COOKIE_SECONDS: u64 = 12 * 3600;

/// Whether the console's cookies carry `Secure` (the listener speaks TLS).
#[derive(Debug, Clone, Copy)]
pub struct SecureCookies(pub bool);

/// `?next=&failed=` of the sign-in page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    next: String,
    failed: String,
}

/// The form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// Only a console path of ours is a place to go back to.
fn safe_next(next: &str) -> String {
    if next.starts_with("/ui/") && !next.starts_with("//") && !next.contains("://") {
        next.to_owned()
    } else {
        "/ui/".into()
    }
}

/// `GET /ui/login`.
pub async fn form(Query(q): Query<LoginQuery>) -> Response {
    let body = html! {
        section.card.login {
            h1 { "Sign in" }
            @if !q.failed.is_empty() { p.bad #login-error { "That token is not one of this server's admin tokens." } }
            form method="post" action="/ui/login" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                input type="hidden" name="next" value=(safe_next(&q.next));
                button #sign-in type="submit" { "Sign in" }
            }
            p.muted { "Tokens are made with " code { "flotta-server admin-token" } "." }
        }
    };
    page("Sign in", None, Nav::None, body).into_response()
}

fn cookie(value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// `POST /ui/login`.
pub async fn sign_in(
    Extension(auth): Extension<AdminAuth>,
    Extension(SecureCookies(secure)): Extension<SecureCookies>,
    Form(f): Form<LoginForm>,
) -> Response {
    let token = f.token.trim();
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(header::AUTHORIZATION, value);
    }
    let next = safe_next(&f.next);
    match (
        auth.authenticate(&headers, None),
        cookie(token, COOKIE_SECONDS, secure),
    ) {
        (Ok(p), Some(c)) if p.via == crate::admin_auth::Via::Token => {
            tracing::info!(principal = %p.name, role = p.role.as_str(), "console sign-in");
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut().insert(header::SET_COOKIE, c);
            r
        }
        _ => {
            tracing::info!("console sign-in refused");
            let url = format!(
                "/ui/login?failed=1&next={}",
                super::fleet::urlencoding(&next)
            );
            (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response()
        }
    }
}

/// `POST /ui/logout`.
pub async fn sign_out(Extension(SecureCookies(secure)): Extension<SecureCookies>) -> Response {
    let mut r = Redirect::to("/ui/login").into_response();
    if let Some(c) = cookie("", 0, secure) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_paths_are_places_to_return_to() {
        assert_eq!(safe_next("/ui/devices/a"), "/ui/devices/a");
        for bad in ["https://evil.example/ui/", "//evil/ui/", "/apis/apply", ""] {
            assert_eq!(safe_next(bad), "/ui/", "{bad}");
        }
    }
}
