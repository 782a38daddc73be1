//! Serving a router on a listener, with the read timeouts of `[limits]`: a client that
//! sends a request head slower than `header_timeout_seconds` is disconnected by hyper, and
//! a request body that has not arrived within `body_timeout_seconds` is answered 408 by
//! [`crate::extract::ApiJson`] (the deadline travels as a [`BodyDeadline`] extension).
//! `axum::serve` has no header timeout, so connections are served with hyper-util's
//! builder here, for the main port and deployments' ports alike.

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// The addresses of `server.host`: one, or several separated by commas as llama-server's
/// `--host 127.0.0.1,::1` (each is bound).
pub fn hosts(host: &str) -> impl Iterator<Item = &str> {
    host.split(',').map(str::trim).filter(|h| !h.is_empty())
}

/// One host (an IP address, IPv6 with or without brackets, or a name) and the port.
pub fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    use std::net::ToSocketAddrs;
    (bare, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host} (server.host)"))
}

/// When the request's body must have arrived by (set for every request at its start).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub at: Instant,
    pub seconds: u64,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drops the listener (stops
/// accepting) and waits for the open connections to finish (the caller bounds that wait).
pub async fn serve_on<L>(
    mut listener: L,
    app: Router,
    limits: &config::LimitsConfig,
    shutdown: impl Future<Output = ()> + Send,
) where
    L: Listener<Addr = SocketAddr>,
{
    let header_timeout = Duration::from_secs(limits.header_timeout_seconds.into());
    let body_seconds = u64::from(limits.body_timeout_seconds);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // `Access-Control-Allow-Origin`, not `access-control-allow-origin`: names are
        // case-insensitive, but clients written against llama-server (cpp-httplib) look
        // headers up in plain dicts (llama.cpp's own server tests do).
        .title_case_headers(true);
    // CONNECT protocol for WebSockets over HTTP/2, as axum::serve does.
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // (axum's `Listener::accept` retries failed accepts itself, pausing on errors such
        // as running out of file descriptors.)
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let svc = app.clone().map_request(move |req: Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(BodyDeadline {
                at: Instant::now() + Duration::from_secs(body_seconds),
                seconds: body_seconds,
            });
            req
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(svc))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_as_llama_server_writes_them() {
        let hosts: Vec<&str> = hosts("127.0.0.1, ::1,,localhost").collect();
        assert_eq!(hosts, ["127.0.0.1", "::1", "localhost"]);
        assert_eq!(
            resolve("::1", 8080).unwrap(),
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve("[::1]", 80).unwrap(),
            "[::1]:80".parse::<SocketAddr>().unwrap()
        );
        assert!(resolve("localhost", 1).unwrap().ip().is_loopback());
        let err = resolve("no-such-host.invalid", 1).unwrap_err().to_string();
        assert!(err.contains("server.host"), "{err}");
    }
}
