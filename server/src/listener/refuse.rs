//! What a refused client sees: once its request headers are in, `503
//! Service Unavailable` with `Retry-After` and `Connection: close`, and a
//! JSON `{"message"}` saying which budget was full. The body is never read.
//!
//! An HTTP answer rather than a bare close: a device's client reports a
//! clear, retriable status (the agent retries 503 with backoff) instead of
//! a connection reset it cannot tell from a broken link. The exchange is
//! bounded by the admission timeout and holds no admitted slot.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::budget::Refused;
use super::linger::Lingering;

/// Seconds a refused client is asked to wait (`Retry-After`): long enough
/// for stalled connections to hit their deadlines at the default settings'
/// minimum rate grace, short against a device's upload interval.
pub const RETRY_AFTER_SECONDS: u64 = 30;

/// The refusal response.
pub fn response(refused: Refused) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "message": format!("too many connections: {refused}; retry later"),
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Answer the first request on `io` with the refusal and close, within `within`.
pub(super) async fn refuse<Io>(io: Io, refused: Refused, within: Duration)
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(
            move |_req| async move { Ok::<_, Infallible>(response(refused)) },
        );
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(within)
        .keep_alive(false)
        .serve_connection(TokioIo::new(Lingering::new(io)), service);
    let _ = tokio::time::timeout(within, conn).await;
}
