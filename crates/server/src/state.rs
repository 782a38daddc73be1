//! What every handler shares: the models, the configuration, keys, metrics, logs, the event
//! feed, and the shutdown switch.

use crate::auth::Keys;
use crate::events::Events;
use crate::logs::Logs;
use crate::metrics::Metrics;
use config::{Config, Paths};
use service::bench::BenchRunner;
use service::{Models, SamplingDefaults};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::watch;

pub struct AppState {
    pub models: Arc<Models>,
    pub paths: Paths,
    pub config: RwLock<Config>,
    /// Held by every change of the configuration (file and running config) from its read
    /// to its write, so concurrent edits apply one after the other and none is lost.
    pub config_edits: tokio::sync::Mutex<()>,
    pub keys: Keys,
    pub sampling: RwLock<SamplingDefaults>,
    pub metrics: Metrics,
    pub logs: Logs,
    pub events: Events,
    pub bench: Arc<BenchRunner>,
    pub deployments: Arc<service::Deployments>,
    /// The tool registry: MCP servers and built-in tools (started by `serve`,
    /// [`service::Tools::start`]).
    pub tools: Arc<service::Tools>,
    /// Ollama's and LM Studio's ports, when open (`crate::ports::AppPorts`).
    pub app_ports: crate::ports::AppPorts,
    /// Model downloads: the one queue, hub and registry clients, made on first use
    /// ([`AppState::downloads`]): its HTTP client and TLS roots are memory an idle server
    /// that downloads nothing does not need.
    pub downloads: tokio::sync::OnceCell<Arc<service::Downloads>>,
    /// Chat sessions (`None` without a database).
    pub sessions: Option<Arc<service::Sessions>>,
    pub started: Instant,
    /// Set to true to begin a graceful shutdown.
    pub shutdown: watch::Sender<bool>,
    /// The address the server listens on (for `/props` and logs).
    pub listen: String,
    /// The address actually bound (port 0 resolved), set once by whoever binds
    /// ([`AppState::set_bound`]); the Host guard needs to know whether it is loopback.
    pub bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// True while `serve` scans the model folders, restores deployments and preloads the
    /// `-m` model: `/health` answers 503 then, as llama-server does while it loads, so a
    /// client that waits for a healthy server never sends a request to a model not yet found.
    pub starting: std::sync::atomic::AtomicBool,
    /// What `/props` said about each model when it was last loaded (`api::native::model_props`),
    /// to answer for a sleeping model without waking it. Keyed by catalog id (bounded).
    pub props: std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The props remembered for model `id` (see [`AppState::props`]).
    pub fn props_of(&self, id: &str) -> Option<serde_json::Value> {
        let props = self.props.lock().unwrap_or_else(|p| p.into_inner());
        props.get(id).cloned()
    }

    pub fn remember_props(&self, id: &str, props: serde_json::Value) {
        let mut all = self.props.lock().unwrap_or_else(|p| p.into_inner());
        all.insert(id.to_string(), props);
    }

    pub fn sampling(&self) -> SamplingDefaults {
        self.sampling
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The sampling a request for `model` starts from: the server's, with the model's own
    /// defaults where the user set nothing (`service::Models::sampling_for`).
    pub async fn sampling_for(&self, model: Option<&str>) -> SamplingDefaults {
        self.models.sampling_for(model, &self.sampling()).await
    }

    /// Records the address the listener is bound to (`serve`, and tests that bind their own).
    pub fn set_bound(&self, addr: std::net::SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// The bound address, once known.
    pub fn bound(&self) -> Option<std::net::SocketAddr> {
        self.bound.get().copied()
    }

    /// The download service, made (and its events forwarded) on first use; a `[download]`
    /// that cannot be used (an endpoint that is not a URL) is the caller's error.
    pub async fn downloads(&self) -> Result<&Arc<service::Downloads>, service::ServiceError> {
        self.downloads
            .get_or_try_init(|| async {
                let d = service::Downloads::new(
                    self.models.clone(),
                    &self.config().download,
                    &self.paths,
                )?;
                self.events.forward_downloads(d.subscribe());
                Ok(d)
            })
            .await
    }

    /// Brings back the unfinished downloads of an earlier run, paused or resuming
    /// (`download.resume_on_start`). The service is made here whether or not tasks wait:
    /// it claims the data folder's download queue for this server (`Downloads::claim_queue`),
    /// so that a `pull` on the same data folder is refused rather than racing it.
    pub async fn restore_downloads(&self) -> usize {
        match self.downloads().await {
            Ok(d) => d.restore(self.config().download.resume_on_start).await,
            Err(e) => {
                tracing::warn!("unfinished downloads cannot come back: {e}");
                0
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Starts a graceful shutdown (signal handler, `POST /api/system/shutdown`).
    pub fn begin_shutdown(&self) {
        // `send_replace` updates the value even when nobody is subscribed yet.
        self.shutdown.send_replace(true);
    }
}
