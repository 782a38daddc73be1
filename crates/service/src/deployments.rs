//! Deployments (seed 001 §3): a model started under a name with its load parameters, and
//! optionally a port of its own that serves only that model. A deployment *is* a loaded
//! model: starting it loads the model through the manager, stopping it unloads it.
//!
//! The state machine (each arrow is one method; a failed load or bind ends in `Failed`):
//!
//! ```text
//!   start/restart ──▶ Starting ──load + open port──▶ Running ──stop──▶ Stopped
//!                        │                              │ health check
//!                        └──────────▶ Failed ◀──────────┘
//! ```
//!
//! Deployments are stored (`store::StoredDeployment`) with whether the user last asked them
//! to run; [`Deployments::restore`] starts those again after a restart. The port is served by
//! whoever implements [`PortServer`] (the HTTP server): this layer only decides when it opens
//! and closes.

use crate::error::ServiceError;
use crate::models::Models;
use manager::{ManagerError, ModelState};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::StoredDeployment;
use tokio::sync::{broadcast, oneshot};

/// How long a health check waits for a model's answer before calling it failed.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Starting,
    Running,
    Stopped,
    Failed,
}

impl DeploymentState {
    /// Starting or running: the deployment holds its model (and its port).
    pub fn is_active(self) -> bool {
        matches!(self, DeploymentState::Starting | DeploymentState::Running)
    }
}

/// A deployment as callers see it (a snapshot).
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    /// The catalog id of its model.
    pub model: String,
    pub params: Map<String, Value>,
    /// The port asked for: `None` = none of its own, `Some(0)` = any free port.
    pub port: Option<u16>,
    /// The port it listens on now (while starting or running).
    pub bound_port: Option<u16>,
    pub state: DeploymentState,
    pub error: Option<String>,
    pub created_at: SystemTime,
    pub started: Option<Instant>,
    pub restarts: u32,
}

/// What a start asks for.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Model id, alias or path.
    pub model: String,
    /// A name for the deployment (default: a generated id).
    pub name: Option<String>,
    pub params: Map<String, Value>,
    /// A port of its own that serves only this model (0 = any free port).
    pub port: Option<u16>,
}

/// A change the event feed publishes.
#[derive(Debug, Clone)]
pub struct DeploymentEvent {
    /// `deployment.updated` or `deployment.failed`.
    pub kind: &'static str,
    pub deployment: Deployment,
}

/// Serves one model on a port of its own. Implemented by the HTTP server; the service layer
/// only decides when a port opens and closes.
pub trait PortServer: Send + Sync + 'static {
    /// Binds `port` (0 = any free port) and starts serving `model` there, for deployment
    /// `deployment`. An error says why it could not bind.
    fn open(&self, deployment: &str, model: &str, port: u16) -> Result<OpenPort, String>;
}

/// A port being served. [`close`](OpenPort::close) stops accepting and returns once the
/// listening socket is closed (connections still running finish on their own).
pub struct OpenPort {
    port: u16,
    stop: oneshot::Sender<()>,
    /// `None` once it resolved.
    closed: Option<oneshot::Receiver<()>>,
}

impl OpenPort {
    /// `stop` is fired to close the port; `closed` must resolve (its sender sent or dropped)
    /// once the listening socket is gone.
    pub fn new(port: u16, stop: oneshot::Sender<()>, closed: oneshot::Receiver<()>) -> Self {
        OpenPort {
            port,
            stop,
            closed: Some(closed),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the listener is gone although nobody closed it (its task died).
    fn is_dead(&mut self) -> bool {
        let Some(rx) = self.closed.as_mut() else {
            return true;
        };
        if matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            return false;
        }
        self.closed = None;
        true
    }

    pub async fn close(self) {
        let _ = self.stop.send(());
        if let Some(closed) = self.closed {
            let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;
        }
    }
}

struct Entry {
    d: Deployment,
    /// Counts starts and stops: a start that finishes after a later stop or start must not
    /// overwrite what that one did.
    epoch: u64,
    open: Option<OpenPort>,
}

/// Every deployment, their stored copy and their ports.
pub struct Deployments {
    models: Arc<Models>,
    ports: Box<dyn PortServer>,
    all: Mutex<BTreeMap<String, Entry>>,
    events: broadcast::Sender<DeploymentEvent>,
}

impl Deployments {
    pub fn new(models: Arc<Models>, ports: Box<dyn PortServer>) -> Arc<Self> {
        Arc::new(Deployments {
            models,
            ports,
            all: Mutex::new(BTreeMap::new()),
            events: broadcast::channel(256).0,
        })
    }

    /// State changes, for an event feed (a subscriber that falls behind misses old ones).
    pub fn subscribe(&self) -> broadcast::Receiver<DeploymentEvent> {
        self.events.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every deployment, by id.
    pub fn list(&self) -> Vec<Deployment> {
        self.lock().values().map(|e| e.d.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Result<Deployment, ServiceError> {
        self.lock()
            .get(id)
            .map(|e| e.d.clone())
            .ok_or_else(|| not_found(id))
    }

    /// Whether deployment `id` is starting or running (its port serves only then).
    pub fn is_active(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|e| e.d.state.is_active())
    }

    fn emit(&self, kind: &'static str, d: &Deployment) {
        let _ = self.events.send(DeploymentEvent {
            kind,
            deployment: d.clone(),
        });
    }

    async fn store(
        &self,
        f: impl FnOnce(&store::Store) -> Result<(), store::StoreError> + Send + 'static,
    ) {
        // The deployment runs either way; a store that cannot write only loses the restart.
        if let Err(e) = self.models.with_store(f).await {
            tracing::warn!(error = %e, "deployment not saved");
        }
    }

    /// Checks the request, records the deployment as starting and starts it in the
    /// background (its state says when it runs).
    pub async fn start(self: &Arc<Self>, req: StartRequest) -> Result<Deployment, ServiceError> {
        let entry = self.models.resolve(&req.model).await?;
        // Check the parameters now, so a typo is refused and not a failed deployment.
        self.models.spec_for(&entry, &req.params).await?;
        let id = match req.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => {
                if n.len() > 64
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(ServiceError::invalid(
                        "name",
                        "use up to 64 letters, digits, '-', '_', '.'",
                    ));
                }
                n.to_string()
            }
            _ => format!("dep-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        };
        let d = Deployment {
            id: id.clone(),
            model: entry.id.clone(),
            params: req.params,
            port: req.port,
            bound_port: None,
            state: DeploymentState::Starting,
            error: None,
            created_at: SystemTime::now(),
            started: None,
            restarts: 0,
        };
        let epoch = {
            let mut all = self.lock();
            if all.get(&id).is_some_and(|e| e.d.state.is_active()) {
                return Err(ServiceError::Conflict(format!(
                    "deployment '{id}' exists and is not stopped"
                )));
            }
            for other in all.values().filter(|e| e.d.state.is_active()) {
                if other.d.model == entry.id {
                    return Err(ServiceError::Conflict(format!(
                        "model '{}' is already deployed as '{}'",
                        entry.id, other.d.id
                    )));
                }
                if let Some(p) = req.port.filter(|&p| p != 0)
                    && (other.d.port == Some(p) || other.d.bound_port == Some(p))
                {
                    return Err(ServiceError::Conflict(format!(
                        "port {p} is already used by deployment '{}'",
                        other.d.id
                    )));
                }
            }
            let epoch = all.get(&id).map_or(0, |e| e.epoch) + 1;
            all.insert(
                id.clone(),
                Entry {
                    d: d.clone(),
                    epoch,
                    open: None,
                },
            );
            epoch
        };
        let row = stored(&d, true);
        self.store(move |s| s.put_deployment(&row)).await;
        self.emit("deployment.updated", &d);
        let me = self.clone();
        tokio::spawn(async move { me.bring_up(&id, epoch).await });
        Ok(d)
    }

    /// Loads the model and opens the port; the result counts only if no stop or start came
    /// in between (`epoch`).
    async fn bring_up(&self, id: &str, epoch: u64) {
        let Some((model, params, port)) = self
            .lock()
            .get(id)
            .map(|e| (e.d.model.clone(), e.d.params.clone(), e.d.port))
        else {
            return;
        };
        let mut result = self.models.load(&model, &params).await.map(|_| None);
        if let (Ok(_), Some(p)) = (&result, port) {
            result = self.ports.open(id, &model, p).map(Some).map_err(|e| {
                // The deployment failed: it does not keep its model either.
                let _ = unload(&self.models, &model);
                ServiceError::Conflict(e)
            });
        }
        let outcome = {
            let mut all = self.lock();
            match all.get_mut(id).filter(|e| e.epoch == epoch) {
                // Stopped or started again meanwhile: that call owns the deployment now.
                None => Err(result),
                Some(e) => {
                    match result {
                        Ok(open) => {
                            e.d.bound_port = open.as_ref().map(OpenPort::port);
                            e.open = open;
                            e.d.state = DeploymentState::Running;
                            e.d.started = Some(Instant::now());
                            e.d.error = None;
                            tracing::info!(deployment = %id, model = %model, port = ?e.d.bound_port, "deployment running");
                        }
                        Err(err) => {
                            e.d.state = DeploymentState::Failed;
                            e.d.error = Some(err.to_string());
                            tracing::warn!(deployment = %id, model = %model, error = %err, "deployment failed to start");
                        }
                    }
                    Ok(e.d.clone())
                }
            }
        };
        let d = match outcome {
            Ok(d) => d,
            Err(stale) => {
                if let Ok(Some(open)) = stale {
                    open.close().await;
                }
                return;
            }
        };
        let kind = if d.state == DeploymentState::Failed {
            "deployment.failed"
        } else {
            "deployment.updated"
        };
        self.emit(kind, &d);
    }

    /// Unloads the model (refused while requests run on it) and closes the port.
    pub async fn stop(&self, id: &str) -> Result<Deployment, ServiceError> {
        let (d, _) = self.take_down(id, false).await?;
        tracing::info!(deployment = %id, model = %d.model, "deployment stopped");
        self.emit("deployment.updated", &d);
        Ok(d)
    }

    /// Stops (if running) and starts again with the same parameters and port; returns once
    /// it runs or failed.
    pub async fn restart(&self, id: &str) -> Result<Deployment, ServiceError> {
        let (_, epoch) = self.take_down(id, true).await?;
        self.bring_up(id, epoch).await;
        self.get(id)
    }

    /// What stop and restart share: unload the model (refused while requests run on it),
    /// leave the deployment stopped (or starting again), close its port and store whether it
    /// should run. Returns the deployment and its new epoch.
    async fn take_down(
        &self,
        id: &str,
        restarting: bool,
    ) -> Result<(Deployment, u64), ServiceError> {
        let d = self.get(id)?;
        unload(&self.models, &d.model)?;
        let (d, epoch, open) = {
            let mut all = self.lock();
            let e = all.get_mut(id).ok_or_else(|| not_found(id))?;
            e.epoch += 1;
            if restarting {
                e.d.restarts += 1;
                e.d.state = DeploymentState::Starting;
                e.d.error = None;
            } else {
                e.d.state = DeploymentState::Stopped;
            }
            e.d.started = None;
            e.d.bound_port = None;
            (e.d.clone(), e.epoch, e.open.take())
        };
        if let Some(open) = open {
            open.close().await;
        }
        let (key, restarts) = (id.to_string(), d.restarts);
        self.store(move |s| {
            s.set_deployment_running(&key, restarting, restarts)
                .map(drop)
        })
        .await;
        Ok((d, epoch))
    }

    /// Forgets a stopped (or failed) deployment.
    pub async fn remove(&self, id: &str) -> Result<(), ServiceError> {
        {
            let mut all = self.lock();
            let e = all.get(id).ok_or_else(|| not_found(id))?;
            if e.d.state.is_active() {
                return Err(ServiceError::Conflict(format!(
                    "deployment '{id}' is {}; stop it first",
                    if e.d.state == DeploymentState::Running {
                        "running"
                    } else {
                        "starting"
                    }
                )));
            }
            all.remove(id);
        }
        let key = id.to_string();
        self.store(move |s| s.delete_deployment(&key).map(drop))
            .await;
        Ok(())
    }

    /// Reads the stored deployments and starts again those that were running. Call once,
    /// after the catalog is scanned (their models are resolved against it). Returns how many
    /// it starts.
    pub async fn restore(self: &Arc<Self>) -> usize {
        let stored = match self.models.with_store(|s| s.deployments()).await {
            Ok(Some(v)) => v,
            Ok(None) => return 0,
            Err(e) => {
                tracing::warn!(error = %e, "stored deployments cannot be read");
                return 0;
            }
        };
        let mut starting = Vec::new();
        {
            let mut all = self.lock();
            for s in stored {
                if all.contains_key(&s.id) {
                    continue;
                }
                let d = Deployment {
                    id: s.id.clone(),
                    model: s.model_id,
                    params: s.params,
                    port: s.port,
                    bound_port: None,
                    state: if s.running {
                        DeploymentState::Starting
                    } else {
                        DeploymentState::Stopped
                    },
                    error: None,
                    created_at: UNIX_EPOCH + Duration::from_secs(s.created_at.max(0) as u64),
                    started: None,
                    restarts: s.restarts,
                };
                if s.running {
                    starting.push(s.id.clone());
                }
                all.insert(
                    s.id,
                    Entry {
                        d,
                        epoch: 1,
                        open: None,
                    },
                );
            }
        }
        for id in &starting {
            tracing::info!(deployment = %id, "restoring deployment");
            let me = self.clone();
            let id = id.clone();
            tokio::spawn(async move { me.bring_up(&id, 1).await });
        }
        starting.len()
    }

    /// Closes every port without changing what is stored (the server is stopping: the
    /// deployments that run now start again with it).
    pub async fn close_all(&self) {
        let open: Vec<OpenPort> = {
            let mut all = self.lock();
            all.values_mut()
                .filter_map(|e| {
                    e.epoch += 1;
                    e.d.bound_port = None;
                    e.open.take()
                })
                .collect()
        };
        for o in open {
            o.close().await;
        }
    }

    /// Every `every`, checks each running deployment: its model must be loaded and answer
    /// within [`HEALTH_TIMEOUT`], and its port must still be served. A deployment that fails
    /// is marked failed (and its port closed).
    pub fn spawn_health_check(self: &Arc<Self>, every: Duration) {
        let me: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else {
                    return;
                };
                me.check_health().await;
            }
        });
    }

    /// One round of the health check.
    pub async fn check_health(&self) {
        let running: Vec<(String, String, u64)> = self
            .lock()
            .values()
            .filter(|e| e.d.state == DeploymentState::Running)
            .map(|e| (e.d.id.clone(), e.d.model.clone(), e.epoch))
            .collect();
        for (id, model, epoch) in running {
            let mut problem = match self.models.manager().state(&model) {
                ModelState::Failed { reason } => Some(reason),
                ModelState::Unloaded => Some("the model was unloaded".to_string()),
                ModelState::Loading { .. } => None,
                ModelState::Loaded => match self.models.peek(&model) {
                    Some(m) => match tokio::time::timeout(HEALTH_TIMEOUT, m.handle.slots()).await {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some(format!(
                            "the model did not answer a health check in {} s",
                            HEALTH_TIMEOUT.as_secs()
                        )),
                    },
                    None => Some("the model is not loaded".into()),
                },
            };
            let (d, open) = {
                let mut all = self.lock();
                let Some(e) = all.get_mut(&id).filter(|e| e.epoch == epoch) else {
                    continue;
                };
                if problem.is_none() && e.open.as_mut().is_some_and(OpenPort::is_dead) {
                    problem = Some("its port is no longer served".into());
                }
                let Some(reason) = problem else {
                    continue;
                };
                tracing::warn!(deployment = %id, model = %model, %reason, "deployment failed its health check");
                e.epoch += 1;
                e.d.state = DeploymentState::Failed;
                e.d.error = Some(reason);
                e.d.started = None;
                e.d.bound_port = None;
                (e.d.clone(), e.open.take())
            };
            if let Some(open) = open {
                open.close().await;
            }
            self.emit("deployment.failed", &d);
        }
    }
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no deployment '{id}'"))
}

/// Unloads a deployment's model; not loaded is fine, in use is refused.
fn unload(models: &Models, model: &str) -> Result<(), ServiceError> {
    match models.manager().unload(model) {
        Ok(()) | Err(ManagerError::NotLoaded { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn stored(d: &Deployment, running: bool) -> StoredDeployment {
    StoredDeployment {
        id: d.id.clone(),
        model_id: d.model.clone(),
        params: d.params.clone(),
        port: d.port,
        running,
        restarts: d.restarts,
        created_at: d
            .created_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_secs() as i64),
    }
}
