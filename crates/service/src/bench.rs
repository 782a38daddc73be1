//! Benchmarks as a state machine of the service layer: idle → running (one at a time,
//! progress events) → idle, with the result stored. A benchmark measures the managed model
//! through a lease ([`engine::ModelHandle::bench`]): the model loaded for serving is
//! borrowed, or loaded through the manager like any load (evicting under `models_max`), so
//! a benchmark never holds a second copy of a model, and `/api/models` shows the model in
//! use while it runs. The server only adapts this to HTTP and WebSocket.

use crate::error::ServiceError;
use crate::models::Models;
use catalog::ModelEntry;
use engine::bench::{BenchParams, BenchProgress, BenchReport};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// What to measure and on which model.
#[derive(Debug, Clone)]
pub struct BenchRequest {
    pub entry: ModelEntry,
    pub params: BenchParams,
    /// Load parameters to measure with (`{"n_gpu_layers": 99}`): the model is loaded with
    /// exactly these on top of its spec, reloading it if it is loaded otherwise. Empty: the
    /// model as it is loaded (or as its spec loads it).
    pub load: Map<String, Value>,
}

/// A finished benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOutcome {
    pub report: BenchReport,
    /// The stored run's id (`None` without a usable database).
    pub stored_id: Option<i64>,
}

/// Runs one benchmark to the end: a lease on the model, the measurement on its host
/// thread, the result stored. `progress` is called on the model's host thread.
pub async fn run(
    models: &Models,
    req: &BenchRequest,
    progress: impl FnMut(BenchProgress) + Send + 'static,
) -> Result<BenchOutcome, ServiceError> {
    req.params.validate()?;
    let lease = if req.load.is_empty() {
        models.acquire_entry(&req.entry, None).await?
    } else {
        models.acquire_with(&req.entry, &req.load).await?
    };
    let report = lease.handle.bench(req.params.clone(), progress).await?;
    drop(lease);
    let (id, params, results) = (
        req.entry.id.clone(),
        serde_json::to_value(&report.params).unwrap_or_default(),
        serde_json::to_value(&report.results).unwrap_or_default(),
    );
    let stored = models
        .with_store(move |s| s.insert_bench_run(&id, &params, &results))
        .await;
    let stored_id = match stored {
        Ok(id) => id,
        Err(e) => {
            // The figures are still worth returning.
            tracing::warn!(model = %req.entry.id, error = %e, "benchmark result not saved");
            None
        }
    };
    Ok(BenchOutcome { report, stored_id })
}

/// The run in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRun {
    pub run_id: String,
    pub model: String,
    pub params: BenchParams,
}

/// What the runner tells the world (`bench.started`, ...).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BenchEvent {
    Started {
        #[serde(flatten)]
        run: BenchRun,
    },
    Progress {
        run_id: String,
        progress: BenchProgress,
    },
    Completed {
        run_id: String,
        /// The stored run's id.
        id: Option<i64>,
        model: String,
        report: BenchReport,
    },
    Failed {
        run_id: String,
        model: String,
        error: String,
    },
}

impl BenchEvent {
    /// The event's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            BenchEvent::Started { .. } => "bench.started",
            BenchEvent::Progress { .. } => "bench.progress",
            BenchEvent::Completed { .. } => "bench.completed",
            BenchEvent::Failed { .. } => "bench.failed",
        }
    }
}

/// One benchmark at a time, in the background, with events.
pub struct BenchRunner {
    models: Arc<Models>,
    running: Mutex<Option<BenchRun>>,
    events: broadcast::Sender<BenchEvent>,
}

impl BenchRunner {
    pub fn new(models: Arc<Models>) -> Arc<Self> {
        Arc::new(BenchRunner {
            models,
            running: Mutex::new(None),
            events: broadcast::channel(256).0,
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BenchEvent> {
        self.events.subscribe()
    }

    /// The run in progress, if any.
    pub fn current(&self) -> Option<BenchRun> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BenchRun>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a run in the background; a second while one runs is a conflict. Parameters
    /// are checked before anything starts.
    pub fn start(self: &Arc<Self>, req: BenchRequest) -> Result<BenchRun, ServiceError> {
        req.params.validate()?;
        let info = BenchRun {
            run_id: new_run_id(),
            model: req.entry.id.clone(),
            params: req.params.clone(),
        };
        {
            let mut running = self.lock();
            if let Some(r) = running.as_ref() {
                return Err(ServiceError::Conflict(format!(
                    "a benchmark is already running (run {})",
                    r.run_id
                )));
            }
            *running = Some(info.clone());
        }
        let _ = self.events.send(BenchEvent::Started { run: info.clone() });
        let this = self.clone();
        let started = info.clone();
        tokio::spawn(async move {
            let events = this.events.clone();
            let rid = started.run_id.clone();
            let outcome = run(&this.models, &req, move |progress| {
                let _ = events.send(BenchEvent::Progress {
                    run_id: rid.clone(),
                    progress,
                });
            })
            .await;
            let event = match outcome {
                Ok(o) => BenchEvent::Completed {
                    run_id: started.run_id,
                    id: o.stored_id,
                    model: started.model,
                    report: o.report,
                },
                Err(e) => {
                    tracing::warn!(model = %started.model, error = %e, "benchmark failed");
                    BenchEvent::Failed {
                        run_id: started.run_id,
                        model: started.model,
                        error: e.to_string(),
                    }
                }
            };
            // Idle again before the last event, so a client reacting to it can start the next.
            *this.lock() = None;
            let _ = this.events.send(event);
        });
        Ok(info)
    }
}

fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
