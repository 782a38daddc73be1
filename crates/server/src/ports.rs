//! A deployment's own port: a second listener serving the per-model routes of the table
//! (`routes::Routes::per_model`) for one model. `service::Deployments` decides when it opens
//! and closes; this module binds it and pins every request to the deployment's model:
//!
//! - a request that names no model (body `model`, or `?model=` on GET) gets the deployment's;
//! - a request naming another model is refused with 404 in its route family's shape;
//! - `GET /v1/models` lists only that model;
//! - once the deployment is no longer starting or running, requests get 503 (the port closes
//!   right after).
//!
//! Keys, the rate limit, metrics and error shapes are the server's, through the same layers.
//!
//! [`AppPorts`] are the same mechanism ([`serve_port`]) for the ports other apps' clients
//! expect (Ollama's 11434, LM Studio's 1234), serving the whole application.

use crate::error::{ApiError, Flavor};
use crate::state::{AppState, SharedState};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use service::{OpenPort, PortServer};
use std::net::SocketAddr;
use std::sync::Weak;
use tokio::sync::oneshot;

/// The deployment a request came through (a request extension on deployment ports).
#[derive(Debug, Clone)]
pub struct Pinned {
    pub deployment: String,
    /// The catalog id of its model.
    pub model: String,
}

/// Opens deployments' ports on the server's host.
pub struct HttpPorts {
    pub state: Weak<AppState>,
}

impl PortServer for HttpPorts {
    fn open(&self, deployment: &str, model: &str, port: u16) -> Result<OpenPort, String> {
        let state = self
            .state
            .upgrade()
            .ok_or_else(|| "the server is stopping".to_string())?;
        let pin = Pinned {
            deployment: deployment.to_string(),
            model: model.to_string(),
        };
        let app = crate::deployment_app(state.clone(), pin);
        let open = serve_port(&state, port, app)?;
        tracing::info!(%deployment, %model, port = open.port(), "deployment port open");
        Ok(open)
    }
}

/// Binds `port` on the server's first address (`0`: any free port) and serves `app` there
/// with the server's read timeouts ([`crate::listen::serve_on`]) until the port is closed:
/// the one way a second port is opened (deployments', Ollama's and LM Studio's).
pub fn serve_port(state: &AppState, port: u16, app: axum::Router) -> Result<OpenPort, String> {
    let hosts = state.config().server.host;
    let host = crate::listen::hosts(&hosts)
        .next()
        .unwrap_or("127.0.0.1")
        .to_string();
    let listener = crate::listen::resolve(&host, port)
        .map_err(std::io::Error::other)
        .and_then(std::net::TcpListener::bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(tokio::net::TcpListener::from_std)
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?.port();
    let limits = state.config().limits;
    let (stop, stopped) = oneshot::channel::<()>();
    let (closed_tx, closed) = oneshot::channel::<()>();
    let listener = Closing {
        inner: listener,
        _closed: closed_tx,
    };
    tokio::spawn(async move {
        crate::listen::serve_on(listener, app, &limits, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Ok(OpenPort::new(bound, stop, closed))
}

/// The other apps' ports a client may expect us on: Ollama's and LM Studio's. Each serves
/// the whole application (as Ollama serves `/api` and `/v1` on its one port), with the same
/// keys, limits, metrics and error shapes as the main port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppPort {
    Ollama,
    Lmstudio,
}

impl AppPort {
    pub const ALL: [AppPort; 2] = [AppPort::Ollama, AppPort::Lmstudio];

    pub fn name(self) -> &'static str {
        match self {
            AppPort::Ollama => "ollama",
            AppPort::Lmstudio => "lmstudio",
        }
    }

    pub fn parse(name: &str) -> Option<AppPort> {
        AppPort::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The configured port and whether it opens at start.
    pub fn configured(self, c: &config::ServerConfig) -> (u16, bool) {
        match self {
            AppPort::Ollama => (c.ollama_port, c.ollama_port_enabled),
            AppPort::Lmstudio => (c.lmstudio_port, c.lmstudio_port_enabled),
        }
    }

    /// The config key of its port (named in errors).
    pub fn setting(self) -> &'static str {
        match self {
            AppPort::Ollama => "server.ollama_port",
            AppPort::Lmstudio => "server.lmstudio_port",
        }
    }
}

/// The open [`AppPort`]s (opened at start from the config, or from the API).
#[derive(Default)]
pub struct AppPorts {
    open: tokio::sync::Mutex<std::collections::HashMap<AppPort, OpenPort>>,
}

impl AppPorts {
    /// Opens `which` on `port` (`None`: the configured one). An open port is closed first
    /// when another port is asked for; asking for the port it has is a no-op. Returns the
    /// bound port.
    pub async fn start(
        &self,
        state: &SharedState,
        which: AppPort,
        port: Option<u16>,
    ) -> Result<u16, ApiError> {
        let port = port.unwrap_or_else(|| which.configured(&state.config().server).0);
        let mut open = self.open.lock().await;
        if let Some(current) = open.get(&which) {
            if current.port() == port {
                return Ok(port);
            }
            if let Some(old) = open.remove(&which) {
                old.close().await;
            }
        }
        let app = crate::app(state.clone());
        let opened = serve_port(state, port, app).map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} port: {e} (choose another with `port`, or set {})",
                    which.name(),
                    which.setting()
                ),
            )
        })?;
        let bound = opened.port();
        tracing::info!(port = bound, "{} port open", which.name());
        open.insert(which, opened);
        Ok(bound)
    }

    /// Closes `which`; `false` when it was not open.
    pub async fn stop(&self, which: AppPort) -> bool {
        let closing = self.open.lock().await.remove(&which);
        match closing {
            Some(p) => {
                p.close().await;
                tracing::info!("{} port closed", which.name());
                true
            }
            None => false,
        }
    }

    /// The port `which` is served on, if open.
    pub async fn port(&self, which: AppPort) -> Option<u16> {
        self.open.lock().await.get(&which).map(OpenPort::port)
    }

    /// Closes every one (server shutdown).
    pub async fn close_all(&self) {
        let all: Vec<OpenPort> = self.open.lock().await.drain().map(|(_, p)| p).collect();
        for p in all {
            p.close().await;
        }
    }
}

/// A listener that tells when it is dropped (axum drops it as soon as a graceful shutdown
/// starts, before waiting for the connections), so closing a port can wait for exactly that.
struct Closing {
    inner: tokio::net::TcpListener,
    _closed: oneshot::Sender<()>,
}

impl axum::serve::Listener for Closing {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        axum::serve::Listener::accept(&mut self.inner).await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The middleware that keeps a deployment port's requests on its model.
pub async fn pin_model(
    State((state, pin)): State<(SharedState, Pinned)>,
    req: Request,
    next: Next,
) -> Response {
    let flavor = Flavor::of_path(req.uri().path());
    if !state.deployments.is_active(&pin.deployment) {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("deployment '{}' is not running", pin.deployment),
        );
        e.retry_after = Some(5);
        return e.flavor(flavor).into_response();
    }
    let (mut parts, body) = req.into_parts();
    // `?model=` (the GET routes take the model there).
    let mut query: Vec<(String, String)> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    match query.iter().find(|(k, _)| k == "model") {
        Some((_, named)) if !named.trim().is_empty() => {
            if let Err(e) = check(&state, &pin, named).await {
                return e.flavor(flavor).into_response();
            }
        }
        _ if parts.method == Method::GET => {
            query.retain(|(k, _)| k != "model");
            query.push(("model".into(), pin.model.clone()));
            let q = serde_urlencoded::to_string(&query).unwrap_or_default();
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = format!("{}?{q}", parts.uri.path()).parse().ok();
            if let Ok(u) = axum::http::Uri::from_parts(uri) {
                parts.uri = u;
            }
        }
        _ => {}
    }
    let body = if parts.method == Method::GET {
        body
    } else {
        // The same limit as the handlers' (refused before anything is parsed).
        let limit = (state.config().server.body_limit_mb as usize).saturating_mul(1024 * 1024);
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                    .flavor(flavor)
                    .into_response();
            }
        };
        match pin_body(&state, &pin, bytes).await {
            Ok(b) => {
                parts.headers.insert(header::CONTENT_LENGTH, b.len().into());
                Body::from(b)
            }
            Err(e) => return e.flavor(flavor).into_response(),
        }
    };
    parts.extensions.insert(pin);
    next.run(Request::from_parts(parts, body)).await
}

/// A JSON object body gets the deployment's model when it names none, and is refused when
/// it names another; anything else goes to the handler as it came (it reports the error).
async fn pin_body(state: &AppState, pin: &Pinned, bytes: Bytes) -> Result<Bytes, ApiError> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(bytes);
    };
    match body.get("model") {
        Some(Value::String(named)) if !named.trim().is_empty() => {
            check(state, pin, named).await?;
            Ok(bytes)
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {
            body.insert("model".into(), Value::String(pin.model.clone()));
            Ok(Bytes::from(
                serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?,
            ))
        }
        Some(_) => Ok(bytes),
    }
}

/// `named` must be the deployment's model (by id, alias or path).
async fn check(state: &AppState, pin: &Pinned, named: &str) -> Result<(), ApiError> {
    if state
        .models
        .resolve(named)
        .await
        .is_ok_and(|entry| entry.id == pin.model)
    {
        return Ok(());
    }
    let mut e = ApiError::not_found(format!(
        "model '{named}' is not served on this port: it belongs to deployment '{}' (model '{}')",
        pin.deployment, pin.model
    ));
    e.param = Some("model".into());
    Err(e)
}
