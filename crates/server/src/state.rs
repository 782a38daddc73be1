//! What every handler shares: the models, the configuration, keys, metrics, logs, the event
//! feed, and the shutdown switch.

use crate::auth::Keys;
use crate::events::Events;
use crate::logs::Logs;
use crate::metrics::Metrics;
use config::{Config, Paths};
use service::Models;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::watch;

/// Per-request sampling defaults (`--temp`, `--top-k`, `--top-p`, `[sampling]`).
#[derive(Debug, Clone)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
}

impl SamplingDefaults {
    pub fn from_config(c: &config::SamplingConfig) -> Self {
        SamplingDefaults {
            temperature: c.temperature as f32,
            top_k: c.top_k as i32,
            top_p: c.top_p as f32,
            min_p: c.min_p as f32,
            repeat_penalty: c.repeat_penalty as f32,
        }
    }

    /// Engine sampling parameters starting from these defaults.
    pub fn params(&self) -> engine::SamplingParams {
        engine::SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            ..Default::default()
        }
    }
}

pub struct AppState {
    pub models: Arc<Models>,
    pub paths: Paths,
    pub config: RwLock<Config>,
    pub keys: Keys,
    pub sampling: RwLock<SamplingDefaults>,
    pub metrics: Metrics,
    pub logs: Logs,
    pub events: Events,
    pub bench: crate::api::bench::BenchRunner,
    pub deployments: Arc<service::Deployments>,
    pub started: Instant,
    /// Set to true to begin a graceful shutdown.
    pub shutdown: watch::Sender<bool>,
    /// The address the server listens on (for `/props` and logs).
    pub listen: String,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn sampling(&self) -> SamplingDefaults {
        self.sampling
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
