//! Cross-cutting request handling: error shapes per route family, HTTP metrics, and the
//! refusal of new work during shutdown.

use crate::error::{ApiError, Flavor};
use crate::state::SharedState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Errors leave in the shape of their route's API family. Handlers' [`ApiError`]s are
/// re-rendered with the path's flavor; errors made elsewhere (axum's 404/405, the body
/// limit's 413, a timeout's 408) become JSON errors too.
pub async fn shape_errors(req: Request, next: Next) -> Response {
    let flavor = Flavor::of_path(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if let Some(e) = resp.extensions().get::<ApiError>() {
        if e.flavor == flavor {
            return resp;
        }
        let e = e.clone().flavor(flavor);
        return e.into_response();
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match parts.status {
        StatusCode::NOT_FOUND => "route not found".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
        StatusCode::REQUEST_TIMEOUT => "request timed out".to_string(),
        _ if !text.is_empty() => text,
        s => s.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut out = ApiError::new(parts.status, message)
        .flavor(flavor)
        .into_response();
    // Keep headers such as `Allow` (405) and `Retry-After`.
    for (k, v) in parts.headers.iter() {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Counts requests by route and status (errors also apart), their latency to the response
/// head, and the requests open right now (a streaming response counts until its body ends).
///
/// Labels take a fixed set of values, whatever a client sends: the method is one of HTTP's
/// own or `other`, the path is the route's template (`/api/models/{id}/load`) or
/// `unmatched`. A label from the request itself would let a client add a time series per
/// request until `/metrics` and the process's memory grow without bound.
pub async fn http_metrics(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let t0 = Instant::now();
    state.metrics.connections.inc();
    let guard = ConnectionGuard(state.clone());
    let resp = next.run(req).await;
    state
        .metrics
        .http_latency
        .with_label_values(&[method, &route])
        .observe(t0.elapsed().as_secs_f64());
    let status = resp.status();
    state
        .metrics
        .http_requests
        .with_label_values(&[method, &route, status.as_str()])
        .inc();
    if status.is_client_error() || status.is_server_error() {
        state
            .metrics
            .http_errors
            .with_label_values(&[method, &route, status.as_str()])
            .inc();
    }
    // The connection gauge drops when the body is done (or dropped).
    let (parts, body) = resp.into_parts();
    let body = Body::new(GuardedBody {
        inner: body,
        _guard: guard,
    });
    Response::from_parts(parts, body)
}

/// The method as a metrics label: HTTP's standard methods, else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

struct ConnectionGuard(SharedState);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
    }
}

struct GuardedBody {
    inner: Body,
    _guard: ConnectionGuard,
}

impl http_body::Body for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// During shutdown, new requests get 503 (requests already running finish).
pub async fn refuse_when_stopping(
    State(state): State<SharedState>,
    req: Request,
    next: Next,
) -> Response {
    if state.is_shutting_down() && req.uri().path() != "/health" {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
        e.retry_after = Some(5);
        return e.flavor(Flavor::of_path(req.uri().path())).into_response();
    }
    next.run(req).await
}
