//! `llama-dashboard serve`: the HTTP server on axum over the service layer.
//!
//! - [`routes`]: every route and its OpenAPI entry, from one table.
//! - `api/`: one module per API family (`openai`, `lmstudio`, `responses`, `native`, `embed`,
//!   `admin`, `system`, `deployments`, `bench`, `ws`); each parses its own JSON into the service's
//!   protocol-neutral request and writes the outputs back in its own wire format.
//! - [`guard`]: Host and Origin checks (browsers must not drive a local server) and CORS.
//! - [`auth`], [`middleware`]: keys and rate limits; error shapes, metrics, shutdown.
//! - [`ports`]: deployments' own ports (the per-model routes, pinned to one model), and
//!   Ollama's and LM Studio's ports (the whole application), opened the same way.
//! - [`error`]: the one error type, rendered per API family.
//!
//! Layers, outermost first: request id → tracing → Host/Origin guard (which answers CORS
//! preflights and marks allowed origins' responses) → error shapes → HTTP metrics →
//! refuse-when-stopping → auth → body limit → handler.

pub mod api;
pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod guard;
pub mod listen;
pub mod logs;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod ports;
pub mod routes;
pub mod state;

use crate::auth::Keys;
use crate::events::Events;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::state::{AppState, SharedState};
use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::routing::get;
use config::{Config, Paths};
use service::{Models, SamplingDefaults};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Everything `serve` needs beyond the configuration file.
pub struct ServeOptions {
    pub paths: Paths,
    /// The effective configuration (file < env < flags).
    pub config: Config,
    /// Extra inference and admin keys (from a key file), on top of the config's.
    pub extra_keys: (Vec<String>, Vec<String>),
    /// `serve -m` and its names, single-model mode; loaded at start. Its `fallback` is
    /// `server.default_model`'s.
    pub routing: service::Routing,
    /// `serve`'s launch-parameter flags (`-b`, `-fa`, `--lora`, ...), for every model: above its
    /// stored launch parameters ([`service::load_spec`]).
    pub launch: serde_json::Map<String, serde_json::Value>,
    /// How long in-flight requests may run on after a shutdown signal.
    pub grace: Duration,
    pub logs: Logs,
}

/// Resident memory of this process in bytes (Linux), for `/api/system/resources`.
pub fn process_rss() -> Option<u64> {
    service::rss_of(std::process::id())
}

/// Builds the shared state (models not scanned yet: call `models.rescan()`).
pub fn build_state(opts: &ServeOptions) -> SharedState {
    let c = &opts.config;
    let store = match store::Store::open(&opts.paths.database()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "the database cannot be opened; aliases, settings and bench results are unavailable");
            None
        }
    };
    let models = Arc::new(Models::new(
        service::roots(c, &opts.paths),
        store,
        c.models.clone(),
    ));
    models.admission().set_config(c.limits.clone());
    models.set_launch_flags(opts.launch.clone());
    models.set_reasoning(service::ReasoningDefaults::from_config(&c.reasoning));
    models.set_routing(service::Routing {
        fallback: c.server.default_model.clone(),
        ..opts.routing.clone()
    });
    let events = Events::default();
    events.forward_models(models.manager().subscribe());
    let bench = service::bench::BenchRunner::new(models.clone());
    events.forward_bench(bench.subscribe());
    // Answers a killed server left unfinished become `interrupted` here, before any send.
    let sessions = service::Sessions::for_models(&models, c.sessions.clone(), true)
        .unwrap_or_else(|e| {
            tracing::warn!("chat sessions are unavailable: {e}");
            None
        });
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let state = Arc::new_cyclic(|me| AppState {
        downloads: Default::default(),
        sessions,
        deployments: service::Deployments::new(
            models.clone(),
            Box::new(ports::HttpPorts { state: me.clone() }),
        ),
        app_ports: Default::default(),
        tools: service::Tools::new(models.clone(), &c.tools),
        models,
        paths: opts.paths.clone(),
        config: RwLock::new(c.clone()),
        config_edits: Default::default(),
        keys: Keys::from_config(&c.server, &opts.extra_keys),
        sampling: RwLock::new(SamplingDefaults::from_config(&c.sampling)),
        metrics: Metrics::new(),
        logs: opts.logs.clone(),
        events,
        bench,
        started: Instant::now(),
        shutdown,
        listen: format!("{}:{}", c.server.host, c.server.port),
        bound: Default::default(),
        starting: Default::default(),
        props: Default::default(),
    });
    remember_props_on_load(&state);
    state
        .events
        .forward_deployments(state.deployments.subscribe());
    state
        .deployments
        .spawn_health_check(Duration::from_secs(10));
    state
}

/// Each model's `/props` is taken as soon as it is loaded, so that once it sleeps `/props`
/// answers for it without waking it (llama-server caches its props the same way).
fn remember_props_on_load(state: &SharedState) {
    let mut rx = state.models.manager().subscribe();
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            let id = match rx.recv().await {
                Ok(manager::Event::Loaded { id, .. }) => id,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let Some(state) = weak.upgrade() else { return };
            let Some(model) = state.models.peek(&id) else {
                continue;
            };
            match api::native::model_props(&state, &id, &model).await {
                Ok(props) => state.remember_props(&id, props),
                Err(e) => tracing::debug!(model = %id, error = ?e, "props of a loaded model"),
            }
        }
    });
}

/// The whole application: routes and layers (Vertex AI's predict route when the
/// environment asks for it, `AIP_MODE=PREDICTION`).
pub fn app(state: SharedState) -> Router {
    app_with(state, api::vertex::Vertex::from_env())
}

/// [`app`] with Vertex AI's predict route given rather than read from the environment.
pub fn app_with(state: SharedState, vertex: Option<api::vertex::Vertex>) -> Router {
    let routes = routes::table();
    let doc = Arc::new(routes::openapi(&routes.docs));
    let operations: Arc<[&'static str]> = routes::model_operations(&routes.docs).into();
    let mut router = routes.all.route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json((*doc).clone()) }
        }),
    );
    if let Some(v) = vertex {
        if routes.docs.iter().any(|d| d.path == v.predict) {
            tracing::error!(route = %v.predict, "AIP_PREDICT_ROUTE is one of the server's routes: Vertex AI's predict route is not served");
        } else {
            router = api::vertex::add(router, &routes.docs, &v);
        }
    }
    let app = with_layers(router, state, true);
    // Before routing (a layer on the router runs after it): a model id with unencoded `/`
    // becomes the one segment the routes declare (`routes::MODEL_ID_IN_PATH`).
    let encode = move |mut req: axum::extract::Request| {
        if let Some(path) = routes::encode_model_id(req.uri().path(), &operations) {
            let pq = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = pq.parse().ok();
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
        req
    };
    Router::new().fallback_service(tower::ServiceExt::map_request(app, encode))
}

/// A deployment's own port (`ports`): the per-model routes, pinned to its model, behind the
/// same layers as the server's.
pub fn deployment_app(state: SharedState, pin: ports::Pinned) -> Router {
    let router = routes::table()
        .per_model
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), pin),
            ports::pin_model,
        ));
    with_layers(router, state, false)
}

/// Error shapes, metrics, shutdown, keys and the body limit (innermost last), the
/// Host/Origin guard with CORS, tracing and request ids; with `pages`, the web dashboard's
/// pages and files innermost (`pages::serve`; the server's own port only).
fn with_layers(router: Router<SharedState>, state: SharedState, pages: bool) -> Router {
    let c = state.config();
    let body_limit = (c.server.body_limit_mb as usize).saturating_mul(1024 * 1024);
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = router.fallback(|| async { axum::http::StatusCode::NOT_FOUND });
    if pages {
        // After the fallback: a layer covers only what the router has when it is added.
        router = router.layer(axum::middleware::from_fn(pages::serve));
    }
    let router = router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::refuse_when_stopping,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::http_metrics,
        ))
        .layer(axum::middleware::from_fn(middleware::shape_errors));
    let policy = Arc::new(guard::Policy::new(
        &c.server.cors_origins,
        &c.server.allowed_hosts,
    ));
    router
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), policy),
            guard::guard,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Runs the server until SIGINT/SIGTERM or `POST /api/system/shutdown`, then stops
/// accepting, lets in-flight requests finish for up to `grace`, unloads the models and
/// returns.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let c = opts.config.clone();
    let keys = Keys::from_config(&c.server, &opts.extra_keys);
    // Every address is checked before any is bound: a refused one starts nothing.
    let mut addrs = Vec::new();
    for host in listen::hosts(&c.server.host) {
        let addr = listen::resolve(host, c.server.port)?;
        refuse_open_network(addr, &keys, &c.server)?;
        addrs.push(addr);
    }
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        listeners.push(listener);
    }
    let locals = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<Vec<_>, _>>()?;
    let state = build_state(&opts);
    // MCP servers start supervised in the background; a config file that cannot be read or
    // parsed stops `serve` here (its bad entries are only warnings).
    state.tools.start().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // The Host guard asks whether the server is reachable from the network: it is if any
    // of its addresses is not loopback.
    state.set_bound(
        *locals
            .iter()
            .find(|a| !a.ip().is_loopback())
            .unwrap_or(&locals[0]),
    );
    for local in locals.iter().filter(|a| !a.ip().is_loopback()) {
        if state.keys.is_open() {
            tracing::warn!(
                "listening on {local} without an API key (server.allow_open_network): anyone \
                 who can reach it can use and manage it"
            );
        }
    }
    // Scan after binding, so /health answers at once (503 until the scan and the preload
    // are done) even with big model folders.
    state
        .starting
        .store(true, std::sync::atomic::Ordering::Release);
    {
        let st = state.clone();
        let preload = opts.routing.model.clone();
        tokio::spawn(async move {
            let s = st.clone();
            let report = tokio::task::spawn_blocking(move || s.models.rescan()).await;
            if let Ok(r) = report {
                tracing::info!(
                    models = r.models.len(),
                    skipped = r.skipped.len(),
                    "model folders scanned"
                );
            }
            let downloads = st.restore_downloads().await;
            if downloads > 0 {
                tracing::info!(
                    downloads,
                    resumed = st.config().download.resume_on_start,
                    "unfinished downloads are back (download.resume_on_start)"
                );
            }
            let restored = st.deployments.restore().await;
            if restored > 0 {
                tracing::info!(
                    deployments = restored,
                    "restarting the deployments that ran"
                );
            }
            if let Some(name) = preload {
                match st.models.load(&name, &Default::default()).await {
                    Ok(e) => tracing::info!(model = %e.id, "preloaded"),
                    Err(e) => tracing::error!(model = %name, error = %e, "preloading failed"),
                }
            }
            // MCP servers have been starting meanwhile: ready once they list their tools.
            st.tools.warm_up().await;
            st.starting
                .store(false, std::sync::atomic::Ordering::Release);
        });
    }
    // Signals start the same graceful shutdown as the API.
    {
        let st = state.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received, shutting down");
            st.begin_shutdown();
        });
    }
    for local in &locals {
        // Shown whatever the log level; with `log.format = "json"` stderr holds only JSON
        // lines, and the event below says it.
        if c.log.format == config::LogFormat::Text {
            eprintln!("llama-dashboard listening on http://{local}");
        }
        tracing::info!(%local, "listening");
    }
    // Ollama's and LM Studio's ports, when the configuration opens them at start; a port
    // that cannot be bound (the app itself runs) is said and the server goes on.
    for which in ports::AppPort::ALL {
        let (port, enabled) = which.configured(&c.server);
        if enabled && let Err(e) = state.app_ports.start(&state, which, Some(port)).await {
            tracing::error!("{}", e.message);
        }
    }
    let app = app(state.clone());
    let mut serving = tokio::task::JoinSet::new();
    for listener in listeners {
        let mut stop = state.shutdown.subscribe();
        let (app, limits) = (app.clone(), c.limits.clone());
        serving.spawn(async move {
            listen::serve_on(listener, app, &limits, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
    }
    let handle = async move {
        while let Some(done) = serving.join_next().await {
            done?;
        }
        Ok::<(), tokio::task::JoinError>(())
    };
    let mut stop2 = state.shutdown.subscribe();
    let _ = stop2.wait_for(|s| *s).await;
    // Deployments' ports stop accepting too (they come back with the next start).
    state.deployments.close_all().await;
    state.app_ports.close_all().await;
    // Tool calls do not hold the shutdown: the MCP servers stop now (bounded: a hung server
    // is killed, its process group with it), so a call under way ends with an error result
    // and its request finishes, as llama-server closes its MCP instances at shutdown.
    let tools = state.tools.clone();
    let tools_stopped = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(15), tools.shutdown()).await;
    });
    // Stopped accepting; give in-flight requests their grace period.
    match tokio::time::timeout(opts.grace, handle).await {
        Ok(Ok(())) => tracing::info!("all requests finished"),
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!(
            grace_s = opts.grace.as_secs(),
            "grace period over, closing remaining requests"
        ),
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), state.models.manager().shutdown()).await;
    let _ = tools_stopped.await;
    Ok(())
}

/// A non-loopback address without any key would let anyone on the network load models, read
/// the configuration and stop the server: refused before binding, unless the operator says
/// so (`--insecure-open`, `server.allow_open_network = true`).
pub fn refuse_open_network(
    addr: SocketAddr,
    keys: &Keys,
    c: &config::ServerConfig,
) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || !keys.is_open() || c.allow_open_network {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {addr} without an API key: anyone who can reach this address \
         could run models, read the configuration and shut the server down. Set a key \
         (--api-key and --admin-api-key, --api-key-file, server.api_key, [[server.keys]]), bind \
         a loopback address (--host 127.0.0.1), or pass --insecure-open \
         (server.allow_open_network = true) if an open server is what you want"
    )
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
